// Package events records webhook events in the same transaction as the change
// that causes them, and fans each one out into deliveries: one per active
// webhook subscribed to it. The delivery workers (internal/delivery) send
// them. Because events and deliveries commit with the change, a crash can
// delay an event but never lose it.
//
// Callers run Emit inside the transaction of their change and, after the
// commit, call api.Server.EventsWritten (or delivery.Service.Wake) so the
// workers start at once instead of at their next poll.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store"
)

// InactivityJob is the job kind of the per-(webhook, conversation) timer that
// emits whatsapp.conversation.inactive; internal/delivery handles it.
const InactivityJob = "webhook.inactivity"

// InactivityKey is the unique job key of the inactivity timer of a webhook
// and conversation: each new message replaces the previous timer.
func InactivityKey(webhookID, conversationID string) string {
	return "inactive:" + webhookID + ":" + conversationID
}

// InactivityPayload is the payload of an InactivityJob.
type InactivityPayload struct {
	WebhookID      string `json:"webhook_id"`
	ConversationID string `json:"conversation_id"`
	Minutes        int    `json:"minutes"`
}

// Default retry policy (README decision 5): 4 attempts in total.
const DefaultMaxAttempts = 4

// Event is one occurrence to deliver.
type Event struct {
	ProjectID      string
	ConfigID       string // empty for project lifecycle events
	ConversationID string // empty when not about a conversation
	Type           string
	// Seq orders whatsapp.message.received and .sent per conversation.
	Seq int64
	// V2 and V1 are the payloads for webhooks of each payload version; a nil
	// V1 means V2 is used for both.
	V2 any
	V1 any
	// Payloads, when V2 is nil, builds V2 and V1. Emit calls it only when
	// the event has deliveries, so an event nobody subscribes to costs no
	// payload (nor the reads that building one needs).
	Payloads func() (v2, v1 any, err error)
}

// IsProjectEvent reports whether t is delivered to project webhooks rather
// than to a config's webhooks.
func IsProjectEvent(t string) bool { return slices.Contains(parley.ProjectEvents, t) }

// Ordered reports whether deliveries of t follow the conversation's order.
func Ordered(t string) bool { return t == parley.EventMessageReceived || t == parley.EventMessageSent }

// insertEvent stores ev and returns its id.
func insertEvent(ctx context.Context, tx *store.Conn, ev Event, now time.Time) (string, error) {
	v2, err := encodePayload(ev.V2)
	if err != nil {
		return "", fmt.Errorf("events: encode payload: %w", err)
	}
	v1 := v2
	if ev.V1 != nil {
		if v1, err = encodePayload(ev.V1); err != nil {
			return "", fmt.Errorf("events: encode v1 payload: %w", err)
		}
	}
	id := store.NewID()
	if _, err := tx.Exec(ctx, `INSERT INTO events (id, project_id, whatsapp_config_id, conversation_id, type, seq, payload_v2, payload_v1, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, ev.ProjectID, nullable(ev.ConfigID), nullable(ev.ConversationID), ev.Type, ev.Seq,
		v2, v1, now.UnixMicro()); err != nil {
		return "", fmt.Errorf("events: insert: %w", err)
	}
	return id, nil
}

// encodePayload encodes a payload exactly as json.Marshal does, faster for
// the values payloads are built from (maps, slices, strings, numbers,
// booleans): events are encoded inside the transaction of the change, on
// SQLite by the one writer, so encoding time is write throughput.
func encodePayload(v any) (string, error) {
	b, err := appendJSON(make([]byte, 0, 1024), v)
	return string(b), err
}

// appendJSONArray appends xs as a JSON array (null when nil), each element
// by appendElem.
func appendJSONArray[T any](b []byte, xs []T, appendElem func([]byte, T) ([]byte, error)) ([]byte, error) {
	if xs == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, e := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendElem(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendJSON appends the JSON encoding of v, byte for byte what
// json.Marshal produces (sorted keys, HTML-safe escaping); values of other
// types, and strings or floats that need more care, go through
// json.Marshal.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x)
	case *string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendJSONString(b, *x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
	case map[string]any:
		return appendJSONObject(b, x)
	case parley.JSONObject:
		if x == nil {
			return append(b, "{}"...), nil
		}
		return appendJSONObject(b, x)
	case []any:
		return appendJSONArray(b, x, appendJSON)
	case []string:
		return appendJSONArray(b, x, appendJSONString)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendJSONObject appends m with its keys sorted, as json.Marshal does.
func appendJSONObject(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendJSON(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONString quotes s; only printable ASCII that needs no escaping
// is done here, anything else by json.Marshal.
func appendJSONString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(b, raw...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MaxAttempts is the number of attempts a webhook's retry settings allow:
// the default policy unless retry_custom is set.
func MaxAttempts(custom bool, retryMaxAttempts int) int {
	if !custom {
		return DefaultMaxAttempts
	}
	return max(retryMaxAttempts, 1)
}

type delivery struct {
	webhookID   string
	event       string // the event's name for the webhook's payload version (parley.EventName)
	buffered    bool
	ordered     bool
	maxAttempts int
}

func insertDelivery(ctx context.Context, tx *store.Conn, ev Event, eventID string, d delivery, now time.Time) (string, error) {
	ids, err := insertDeliveries(ctx, tx, ev, eventID, []delivery{d}, now)
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// deliveryRow is the VALUES row of one delivery in insertDeliveries.
const deliveryRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// maxDeliveryRows bounds the rows of one INSERT (15 parameters each).
const maxDeliveryRows = 64

// insertDeliveries stores the deliveries of one event with one statement
// per maxDeliveryRows of them (an event with ten subscribers costs one
// round trip, not ten) and returns their ids, in the order of ds.
func insertDeliveries(ctx context.Context, tx *store.Conn, ev Event, eventID string, ds []delivery, now time.Time) ([]string, error) {
	us := now.UnixMicro()
	ids := make([]string, 0, len(ds))
	for len(ds) > 0 {
		chunk := ds[:min(len(ds), maxDeliveryRows)]
		ds = ds[len(chunk):]
		args := make([]any, 0, 15*len(chunk))
		for _, d := range chunk {
			status := "pending"
			if d.buffered {
				status = "buffered"
			}
			id := store.NewID()
			ids = append(ids, id)
			name := d.event
			if name == "" {
				name = ev.Type
			}
			args = append(args, id, ev.ProjectID, d.webhookID, eventID, name, nullable(ev.ConversationID), ev.Seq, d.ordered, d.buffered,
				status, d.maxAttempts, store.NewID(), us, us, us)
		}
		q := `INSERT INTO deliveries (id, project_id, webhook_id, event_id, event_type, conversation_id, seq, ordered, buffered,
		status, max_attempts, idempotency_key, next_attempt_at, created_at, updated_at) VALUES ` + deliveryRow +
			strings.Repeat(", "+deliveryRow, len(chunk)-1)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("events: insert deliveries: %w", err)
		}
	}
	return ids, nil
}

// subscriber is an active webhook as Emit needs it, its event lists
// decoded.
type subscriber struct {
	id          string
	events      []string
	buffer      bool
	bufEvents   []string
	maxAttempts int
	custom      bool
	inactivity  int
	version     string // payload_version
}

// webhookMemo remembers, per transaction, the active webhooks of each
// config (and project) Emit read, so a transaction emitting many events
// (a status batch; on SQLite, every webhook sharing a group commit) reads
// them once. Reads inside one transaction see one state, so the memo is
// exactly what the query would answer again, unless the transaction itself
// changes a webhook after reading it: code doing that calls
// InvalidateWebhooks. Entries are dropped a little after their transaction
// (each holds its *store.Conn, so a new transaction can never be mistaken
// for an old one).
var webhookMemo = struct {
	sync.Mutex
	m         map[*store.Conn]*txWebhooks
	lastPrune time.Time
}{m: map[*store.Conn]*txWebhooks{}}

type txWebhooks struct {
	started time.Time
	lists   map[string][]subscriber // "c:"+config id or "p:"+project id
}

// memoAge is how long a transaction's memo is kept.
const memoAge = 2 * time.Second

// InvalidateWebhooks forgets what transactions in progress read of the
// webhooks of configID (of every config and project when configID is
// empty). Call it after changing a config's webhooks inside a transaction
// that goes on to emit events.
func InvalidateWebhooks(configID string) {
	webhookMemo.Lock()
	defer webhookMemo.Unlock()
	for _, t := range webhookMemo.m {
		if configID == "" {
			clear(t.lists)
		} else {
			delete(t.lists, "c:"+configID)
		}
	}
}

func memoGet(tx *store.Conn, key string) ([]subscriber, bool) {
	webhookMemo.Lock()
	defer webhookMemo.Unlock()
	t := webhookMemo.m[tx]
	if t == nil {
		return nil, false
	}
	l, ok := t.lists[key]
	return l, ok
}

func memoPut(tx *store.Conn, key string, l []subscriber) {
	webhookMemo.Lock()
	defer webhookMemo.Unlock()
	now := time.Now()
	if now.Sub(webhookMemo.lastPrune) > memoAge {
		webhookMemo.lastPrune = now
		for c, t := range webhookMemo.m {
			if now.Sub(t.started) > memoAge {
				delete(webhookMemo.m, c)
			}
		}
	}
	t := webhookMemo.m[tx]
	if t == nil {
		t = &txWebhooks{started: now, lists: map[string][]subscriber{}}
		webhookMemo.m[tx] = t
	}
	t.lists[key] = l
}

// subscribers returns the active webhooks an event of ev's kind goes to
// the candidates of: the config's webhooks, or the project's for project
// events.
func subscribers(ctx context.Context, tx *store.Conn, ev Event) ([]subscriber, error) {
	const cols = `id, events, buffer_enabled, buffer_events, retry_max_attempts, retry_custom, inactivity_minutes, payload_version`
	key, q, arg := "c:"+ev.ConfigID, `SELECT `+cols+` FROM whatsapp_webhooks WHERE whatsapp_config_id = ? AND active`, ev.ConfigID
	if IsProjectEvent(ev.Type) {
		key, q, arg = "p:"+ev.ProjectID, `SELECT `+cols+` FROM whatsapp_webhooks
			WHERE project_id = ? AND whatsapp_config_id IS NULL AND active`, ev.ProjectID
	}
	memo := tx.InTx()
	if memo {
		if l, ok := memoGet(tx, key); ok {
			return l, nil
		}
	}
	rows, err := tx.Query(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("events: select webhooks: %w", err)
	}
	defer rows.Close()
	var out []subscriber
	for rows.Next() {
		var s subscriber
		var evs, bufEvs string
		if err := rows.Scan(&s.id, &evs, &s.buffer, &bufEvs, &s.maxAttempts, &s.custom, &s.inactivity, &s.version); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(evs), &s.events)
		_ = json.Unmarshal([]byte(bufEvs), &s.bufEvents)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if memo {
		memoPut(tx, key, out)
	}
	return out, nil
}

// Emit stores ev and one delivery per subscribed active webhook; an event no
// active webhook subscribes to is not stored, as nothing would deliver or
// read it (docs/decisions.md). Received and
// sent message events also (re)start the inactivity timer of every webhook
// of the config subscribed to whatsapp.conversation.inactive. It returns the
// number of deliveries created.
func Emit(ctx context.Context, tx *store.Conn, ev Event) (int, error) {
	now := time.Now()
	subs, err := subscribers(ctx, tx, ev)
	if err != nil {
		return 0, err
	}
	var ds []delivery
	for _, s := range subs {
		if Ordered(ev.Type) && ev.ConversationID != "" && parley.Subscribed(s.events, parley.EventConversationInactive) {
			minutes := max(s.inactivity, 1)
			p := InactivityPayload{WebhookID: s.id, ConversationID: ev.ConversationID, Minutes: minutes}
			if err := jobs.Schedule(ctx, tx, InactivityJob, InactivityKey(s.id, ev.ConversationID), p,
				now.Add(time.Duration(minutes)*time.Minute)); err != nil {
				return 0, err
			}
		}
		if !parley.Subscribed(s.events, ev.Type) {
			continue
		}
		d := delivery{
			webhookID:   s.id,
			event:       parley.EventName(ev.Type, s.version),
			buffered:    s.buffer && slices.Contains(s.bufEvents, ev.Type) && ev.ConversationID != "",
			ordered:     Ordered(ev.Type) && ev.ConversationID != "",
			maxAttempts: MaxAttempts(s.custom, s.maxAttempts),
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return 0, nil
	}
	if ev.V2 == nil && ev.Payloads != nil {
		if ev.V2, ev.V1, err = ev.Payloads(); err != nil {
			return 0, err
		}
	}
	id, err := insertEvent(ctx, tx, ev, now)
	if err != nil {
		return 0, err
	}
	if _, err := insertDeliveries(ctx, tx, ev, id, ds, now); err != nil {
		return 0, err
	}
	return len(ds), nil
}

// EmitTo stores ev and one immediate delivery of it to the webhook webhookID
// only, whatever the webhook subscribes to: test deliveries and per-webhook
// timers (whatsapp.conversation.inactive) use it. It returns the delivery id.
func EmitTo(ctx context.Context, tx *store.Conn, ev Event, webhookID string) (string, error) {
	now := time.Now()
	id, err := insertEvent(ctx, tx, ev, now)
	if err != nil {
		return "", err
	}
	var custom bool
	var maxAttempts int
	var version string
	if err := tx.QueryRow(ctx, `SELECT retry_custom, retry_max_attempts, payload_version FROM whatsapp_webhooks WHERE id = ?`, webhookID).
		Scan(&custom, &maxAttempts, &version); err != nil {
		return "", fmt.Errorf("events: webhook %s: %w", webhookID, err)
	}
	return insertDelivery(ctx, tx, ev, id, delivery{webhookID: webhookID, event: parley.EventName(ev.Type, version),
		maxAttempts: MaxAttempts(custom, maxAttempts)}, now)
}
