package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// APIKeyPrefix starts every generated API key, so leaked keys are easy to
// recognise by secret scanners.
const APIKeyPrefix = "pk_"

// HashAPIKey returns the stored form of an API key. Keys are 256-bit random
// values, so a fast hash is enough: there is nothing to brute-force.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// GenerateAPIKey returns a new random API key.
func GenerateAPIKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// CreateProject inserts a project.
func CreateProject(ctx context.Context, c *Conn, name string, description *string) (*parley.Project, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := &parley.Project{ID: NewID(), Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	_, err := c.Exec(ctx, `INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		p.ID, p.Name, NullStr(description), Micros(now), Micros(now))
	if err != nil {
		return nil, fmt.Errorf("store: create project: %w", err)
	}
	return p, nil
}

const projectCols = `id, name, description, created_at, updated_at`

func scanProject(s Scanner) (*parley.Project, error) {
	var p parley.Project
	var desc sql.NullString
	var ca, ua int64
	if err := s.Scan(&p.ID, &p.Name, &desc, &ca, &ua); err != nil {
		return nil, err
	}
	p.Description, p.CreatedAt, p.UpdatedAt = StrPtr(desc), Time(ca), Time(ua)
	return &p, nil
}

// GetProject returns a project by id.
func GetProject(ctx context.Context, c *Conn, id string) (*parley.Project, error) {
	p, err := scanProject(c.QueryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Project")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get project: %w", err)
	}
	return p, nil
}

func scanAPIKey(s Scanner) (*parley.APIKey, error) {
	var k parley.APIKey
	var ca int64
	var lu, rv sql.NullInt64
	if err := s.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Prefix, &ca, &lu, &rv); err != nil {
		return nil, err
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = Time(ca), TimePtr(lu), TimePtr(rv)
	return &k, nil
}

// ListProjects returns every project, oldest first.
func ListProjects(ctx context.Context, c *Conn) ([]*parley.Project, error) {
	out, err := QueryAll(ctx, c, scanProject, `SELECT `+projectCols+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list projects: %w", err)
	}
	return out, nil
}

// CountProjects returns how many projects exist.
func CountProjects(ctx context.Context, c *Conn) (int, error) {
	var n int
	err := c.QueryRow(ctx, `SELECT COUNT(*) FROM projects`).Scan(&n)
	return n, err
}

// CreateAPIKey stores the hash of key for a project.
func CreateAPIKey(ctx context.Context, c *Conn, projectID, name, key string) (*parley.APIKey, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	prefix := key
	if len(prefix) > 10 {
		prefix = prefix[:10]
	}
	k := &parley.APIKey{ID: NewID(), ProjectID: projectID, Name: name, Prefix: prefix, CreatedAt: now}
	_, err := c.Exec(ctx, `INSERT INTO api_keys (id, project_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, projectID, name, prefix, HashAPIKey(key), Micros(now))
	if IsUniqueViolation(err) {
		return nil, parley.Invalid("Invalid API key", "Key has already been taken")
	}
	if IsForeignKeyViolation(err) {
		return nil, parley.NotFound("Project")
	}
	if err != nil {
		return nil, fmt.Errorf("store: create api key: %w", err)
	}
	return k, nil
}

// ProjectIDForKey returns the project of a valid, unrevoked API key.
func ProjectIDForKey(ctx context.Context, c *Conn, key string) (string, error) {
	var pid string
	err := c.QueryRow(ctx, `SELECT project_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, HashAPIKey(key)).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", &parley.Error{Code: parley.EUNAUTHORIZED, Title: "Invalid or missing API key"}
	}
	if err != nil {
		return "", fmt.Errorf("store: lookup api key: %w", err)
	}
	return pid, nil
}

// ListAPIKeys lists the keys of a project (or of all projects when projectID
// is empty), oldest first.
func ListAPIKeys(ctx context.Context, c *Conn, projectID string) ([]*parley.APIKey, error) {
	q := `SELECT id, project_id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys`
	var args []any
	if projectID != "" {
		q += ` WHERE project_id = ?`
		args = append(args, projectID)
	}
	out, err := QueryAll(ctx, c, scanAPIKey, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey revokes a key by id, or by its printed prefix.
func RevokeAPIKey(ctx context.Context, c *Conn, idOrPrefix string) error {
	res, err := c.Exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL`,
		time.Now().UnixMicro(), idOrPrefix, strings.TrimSpace(idOrPrefix))
	if err != nil {
		return fmt.Errorf("store: revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("API key")
	}
	return nil
}

// GetSetting reads a value from the settings table; ok is false when unset.
func GetSetting(ctx context.Context, c *Conn, key string) (value string, ok bool, err error) {
	err = c.QueryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: get setting: %w", err)
	}
	return value, true, nil
}

// PutSettingIfAbsent stores value under key unless a value exists, and
// returns the value that is stored afterwards.
func PutSettingIfAbsent(ctx context.Context, c *Conn, key, value string) (string, error) {
	if _, err := c.Exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", fmt.Errorf("store: put setting: %w", err)
	}
	v, _, err := GetSetting(ctx, c, key)
	return v, err
}
