package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley"
)

// CustomerFilter holds the list filters of GET /customers.
type CustomerFilter struct {
	NameCont             string
	ExternalCustomerIDEq *string
}

const customerCols = `id, project_id, name, external_customer_id, created_at, updated_at`

func scanCustomer(s Scanner) (*parley.Customer, error) {
	var c parley.Customer
	var ext sql.NullString
	var ca, ua int64
	if err := s.Scan(&c.ID, &c.ProjectID, &c.Name, &ext, &ca, &ua); err != nil {
		return nil, err
	}
	c.ExternalCustomerID, c.CreatedAt, c.UpdatedAt = StrPtr(ext), Time(ca), Time(ua)
	return &c, nil
}

// ListCustomers returns a page of a project's customers, newest first.
func ListCustomers(ctx context.Context, c *Conn, projectID string, f CustomerFilter, p parley.Page) ([]*parley.Customer, int, error) {
	where := ` WHERE project_id = ?`
	args := []any{projectID}
	if f.NameCont != "" {
		where += ` AND name ` + c.ILike() + ` ? ESCAPE '\'`
		args = append(args, "%"+EscapeLike(f.NameCont)+"%")
	}
	if f.ExternalCustomerIDEq != nil {
		where += ` AND external_customer_id = ?`
		args = append(args, *f.ExternalCustomerIDEq)
	}
	out, total, err := QueryPage(ctx, c, scanCustomer, `SELECT COUNT(*) FROM customers`+where,
		`SELECT `+customerCols+` FROM customers`+where+` ORDER BY created_at DESC, id DESC`, args, p.PerPage, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list customers: %w", err)
	}
	return out, total, nil
}

// GetCustomer returns a project's customer.
func GetCustomer(ctx context.Context, c *Conn, projectID, id string) (*parley.Customer, error) {
	cu, err := scanCustomer(c.QueryRow(ctx, `SELECT `+customerCols+` FROM customers WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, parley.NotFound("Customer")
	}
	if err != nil {
		return nil, fmt.Errorf("store: get customer: %w", err)
	}
	return cu, nil
}

// CreateCustomer inserts a customer.
func CreateCustomer(ctx context.Context, c *Conn, cu *parley.Customer) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	cu.ID, cu.CreatedAt, cu.UpdatedAt = NewID(), now, now
	_, err := c.Exec(ctx, `INSERT INTO customers (`+customerCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		cu.ID, cu.ProjectID, cu.Name, NullStr(cu.ExternalCustomerID), Micros(now), Micros(now))
	if err != nil {
		return fmt.Errorf("store: create customer: %w", err)
	}
	return nil
}

// UpdateCustomer saves a customer's name and external id.
func UpdateCustomer(ctx context.Context, c *Conn, cu *parley.Customer) error {
	cu.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	res, err := c.Exec(ctx, `UPDATE customers SET name = ?, external_customer_id = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		cu.Name, NullStr(cu.ExternalCustomerID), Micros(cu.UpdatedAt), cu.ProjectID, cu.ID)
	if err != nil {
		return fmt.Errorf("store: update customer: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Customer")
	}
	return nil
}

// DeleteCustomer deletes a customer; foreign keys cascade to its configs,
// setup links, contacts and, through the configs, conversations and messages.
func DeleteCustomer(ctx context.Context, c *Conn, projectID, id string) error {
	res, err := c.Exec(ctx, `DELETE FROM customers WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return fmt.Errorf("store: delete customer: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.NotFound("Customer")
	}
	return nil
}

// EscapeLike escapes LIKE wildcards in s; queries use ESCAPE '\'.
func EscapeLike(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%', '_', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
