package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// The seeded history. Messages are spread over a year, one after the other
// in time, each belonging to a conversation drawn at random, so the rows of
// one conversation are scattered through the table as they are in
// production. A few "deep" conversations hold a fifth of all messages (the
// deep-page query reads one of them); every other conversation has at least
// one message. Each conversation belongs to one of a few configs and to a
// contact (a contact has several conversations when there are more
// conversations than contacts); only the latest conversation of a (config,
// contact) pair may be active, as the conversations_one_active index
// requires. Everything is derived from a fixed seed, so two runs seed the
// same data.

const (
	seedConfigs = 4
	// rowsPerStmt rows go in one multi-row INSERT; rowsPerTx in one
	// transaction.
	rowsPerStmt = 500
	rowsPerTx   = 25_000
	historySpan = 365 * 24 * time.Hour
)

var firstNames = []string{"María", "José", "Juan", "Ana", "Luis", "Carmen", "Carlos", "Lucía", "Jorge", "Sofía",
	"Miguel", "Valentina", "Pedro", "Camila", "Diego", "Isabel", "Javier", "Martina", "Andrés", "Daniela",
	"Fernando", "Paula", "Ricardo", "Elena", "Raúl", "Gabriela", "Sergio", "Laura", "Pablo", "Victoria",
	"John", "Mary", "David", "Sarah", "Michael", "Emma", "James", "Olivia", "Robert", "Grace",
	"Ahmed", "Fatima", "Wei", "Yuki", "Priya", "Arjun", "Chen", "Hana", "Omar", "Leila"}

var lastNames = []string{"García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín",
	"Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez",
	"Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Ramírez", "Serrano", "Blanco", "Molina",
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
	"Khan", "Patel", "Wang", "Li", "Tanaka", "Kim", "Nguyen", "Silva", "Santos", "Costa"}

var words = strings.Fields(`hola gracias pedido envío cuándo llega mi el la de que por favor sí no ok perfecto
	hello thanks order shipping when does my the a of please yes no okay perfect tracking number address
	payment card refund invoice receipt tomorrow today morning afternoon store open closed price discount`)

// seedPlan is the shape of the data, computed before anything is inserted
// so that conversations can carry their last message's id and times.
type seedPlan struct {
	projectID  string
	configIDs  []string
	start      time.Time
	step       time.Duration // between two consecutive messages
	msgConv    []int32       // conversation of message i
	convOrder  []int32       // conversations in creation order
	convFirst  []int32       // first message of each conversation
	convLast   []int32
	convLastIn []int32 // last inbound message, -1 if none
	convLastOu []int32
	convCount  []int32
	convActive []bool
	// contactFirst is the first message of each contact, -1 if none.
	contactFirst []int32
	deep         []int32 // the deep conversations
	deepSize     int
	contacts     int
}

// plan lays the data out. It is cheap (a few arrays) next to the inserts.
func plan(o options, projectID string, configIDs []string) (*seedPlan, error) {
	nc, nm := o.conversations, o.messages
	nDeep := max(1, min(20, nc/100))
	deepMsgs := nm / 5
	rest := nm - deepMsgs - (nc - nDeep)
	if nc < 1 || o.contacts < 1 || rest < 0 || deepMsgs/nDeep < 1 {
		return nil, fmt.Errorf("need at least one contact and conversation, and -messages ≥ 1.25 × -conversations")
	}
	p := &seedPlan{projectID: projectID, configIDs: configIDs, contacts: o.contacts, deepSize: deepMsgs / nDeep}
	p.start = time.Now().Add(-historySpan).UTC().Truncate(time.Second)
	p.step = historySpan / time.Duration(nm)
	rng := rand.New(rand.NewPCG(1, 2))
	isDeep := make([]bool, nc)
	for k := 0; k < nDeep; k++ {
		j := int32(k * (nc / nDeep))
		isDeep[j] = true
		p.deep = append(p.deep, j)
	}
	p.msgConv = make([]int32, 0, nm)
	for _, j := range p.deep {
		for range p.deepSize {
			p.msgConv = append(p.msgConv, j)
		}
	}
	for j := range nc {
		if !isDeep[j] {
			p.msgConv = append(p.msgConv, int32(j))
		}
	}
	for len(p.msgConv) < nm {
		j := rng.IntN(nc)
		if !isDeep[j] {
			p.msgConv = append(p.msgConv, int32(j))
		}
	}
	rng.Shuffle(len(p.msgConv), func(a, b int) { p.msgConv[a], p.msgConv[b] = p.msgConv[b], p.msgConv[a] })

	p.convFirst, p.convLast = fill(nc, -1), fill(nc, -1)
	p.convLastIn, p.convLastOu = fill(nc, -1), fill(nc, -1)
	p.convCount = make([]int32, nc)
	for i, j := range p.msgConv {
		if p.convFirst[j] < 0 {
			p.convFirst[j] = int32(i)
			p.convOrder = append(p.convOrder, j)
		}
		p.convLast[j] = int32(i)
		p.convCount[j]++
		if inbound(i) {
			p.convLastIn[j] = int32(i)
		} else {
			p.convLastOu[j] = int32(i)
		}
	}
	p.contactFirst = fill(o.contacts, -1)
	for j, first := range p.convFirst {
		if c := p.contactOf(int32(j)); p.contactFirst[c] < 0 || first < p.contactFirst[c] {
			p.contactFirst[c] = first
		}
	}
	// Only the most recently active conversation of a (config, contact)
	// pair may be active; 40% of those are.
	pair := func(j int) int { return p.contactOf(int32(j))*len(configIDs) + j%len(configIDs) }
	latest := map[int]int32{}
	for j := range nc {
		if prev, ok := latest[pair(j)]; !ok || p.convLast[prev] < p.convLast[j] {
			latest[pair(j)] = int32(j)
		}
	}
	p.convActive = make([]bool, nc)
	for j := range nc {
		p.convActive[j] = latest[pair(j)] == int32(j) && rng.Float64() < 0.4
	}
	return p, nil
}

func fill(n int, v int32) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func (p *seedPlan) contactOf(j int32) int { return int(j) % p.contacts }

func (p *seedPlan) msgTime(i int32) int64 {
	return store.Micros(p.start.Add(time.Duration(i) * p.step))
}

// inbound decides a message's direction from its index alone.
func inbound(i int) bool { return mix(uint64(i))%100 < 55 }

// mix is splitmix64: a cheap, well-spread hash of an index.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// id returns a UUIDv7 for the time us, unique per (kind, n): ids sort by
// time as the ones Parley generates do.
func id(us int64, kind byte, n int) string {
	var b [16]byte
	ms := uint64(us / 1000)
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | (kind & 0x0f)
	b[7] = byte(mix(uint64(n)))
	binary.BigEndian.PutUint64(b[8:], uint64(n)|mix(uint64(n)+uint64(kind))<<40)
	b[8] = 0x80 | (b[8] & 0x3f)
	return uuid.UUID(b).String()
}

func (p *seedPlan) msgID(i int32) string     { return id(p.msgTime(i), 1, int(i)) }
func (p *seedPlan) convID(j int32) string    { return id(p.msgTime(p.convFirst[j]), 2, int(j)) }
func (p *seedPlan) contactWaID(c int) string { return strconv.Itoa(5491130000000 + c) }

// contactCreated: a contact is created a second before its first
// conversation; a contact without conversation sometime during the year.
func (p *seedPlan) contactCreated(c int) int64 {
	if first := p.contactFirst[c]; first >= 0 {
		return p.msgTime(first) - 1_000_000
	}
	return store.Micros(p.start) + int64(mix(uint64(c))%uint64(historySpan/time.Microsecond))
}

func (p *seedPlan) contactID(c int) string { return id(p.contactCreated(c), 3, c) }

// profileName: one contact in ten has none.
func profileName(c int) any {
	h := mix(uint64(c) + 77)
	if h%10 == 0 {
		return nil
	}
	return firstNames[(h>>8)%uint64(len(firstNames))] + " " + lastNames[(h>>24)%uint64(len(lastNames))]
}

func text(i int) string {
	h := mix(uint64(i) + 99)
	n := 3 + int(h%18)
	var b strings.Builder
	for k := range n {
		if k > 0 {
			b.WriteByte(' ')
		}
		h = mix(h)
		b.WriteString(words[h%uint64(len(words))])
	}
	return b.String()
}

// bulk inserts n rows into table, rowsPerStmt per statement and rowsPerTx
// per transaction; row appends the values of row k to args.
func bulk(ctx context.Context, db *store.DB, table string, cols []string, n int, row func(k int, args []any) []any) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	stmt := func(rows int) string {
		return head + strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
	}
	full := stmt(rowsPerStmt)
	args := make([]any, 0, rowsPerStmt*len(cols))
	for lo := 0; lo < n; lo += rowsPerTx {
		hi := min(n, lo+rowsPerTx)
		err := db.Tx(ctx, func(tx *store.Conn) error {
			for s := lo; s < hi; s += rowsPerStmt {
				e := min(hi, s+rowsPerStmt)
				args = args[:0]
				for k := s; k < e; k++ {
					args = row(k, args)
				}
				q := full
				if e-s != rowsPerStmt {
					q = stmt(e - s)
				}
				if _, err := tx.Exec(ctx, q, args...); err != nil {
					return fmt.Errorf("insert %s: %w", table, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// seedConfigRows inserts the production configs the conversations use.
func seedConfigRows(ctx context.Context, db *store.DB, projectID string) ([]string, error) {
	ids := make([]string, seedConfigs)
	now := store.Micros(time.Now())
	err := bulk(ctx, db, "whatsapp_configs",
		[]string{"id", "project_id", "name", "kind", "phone_number_id", "display_phone_number_normalized", "created_at", "updated_at"},
		seedConfigs, func(k int, a []any) []any {
			ids[k] = id(now, 4, k)
			return append(a, ids[k], projectID, "Bench line "+strconv.Itoa(k+1), parley.KindProduction,
				"1065"+strconv.FormatInt(now%1e9, 10)+strconv.Itoa(k), "1555078388"+strconv.Itoa(k), now, now)
		})
	return ids, err
}

// seedContacts inserts the contacts in creation order.
func (p *seedPlan) seedContacts(ctx context.Context, db *store.DB) error {
	order := make([]int, p.contacts)
	for c := range order {
		order[c] = c
	}
	// Contacts with a conversation come in their first conversation's
	// order; the rest are spread over the year.
	created := make([]int64, p.contacts)
	for c := range created {
		created[c] = p.contactCreated(c)
	}
	sortBy(order, func(c int) int64 { return created[c] })
	return bulk(ctx, db, "contacts",
		[]string{"id", "project_id", "wa_id", "profile_name", "profile_name_lc", "metadata", "created_at", "updated_at"},
		p.contacts, func(k int, a []any) []any {
			c := order[k]
			name := profileName(c)
			var lc any
			if s, ok := name.(string); ok {
				lc = strings.ToLower(s)
			}
			return append(a, p.contactID(c), p.projectID, p.contactWaID(c), name, lc, "{}", created[c], created[c])
		})
}

// seedConversations inserts the conversations in creation order.
func (p *seedPlan) seedConversations(ctx context.Context, db *store.DB) error {
	nullMsg := func(i int32) any {
		if i < 0 {
			return nil
		}
		return p.msgTime(i)
	}
	return bulk(ctx, db, "conversations",
		[]string{"id", "project_id", "whatsapp_config_id", "contact_id", "phone_number", "status", "metadata",
			"messages_count", "last_seq", "last_message_id", "last_message_type", "last_message_text", "last_message_at",
			"last_inbound_at", "last_outbound_at", "last_active_at", "ended_at", "created_at", "updated_at"},
		len(p.convOrder), func(k int, a []any) []any {
			j := p.convOrder[k]
			c := p.contactOf(j)
			last := p.msgTime(p.convLast[j])
			status, ended := parley.ConversationActive, any(nil)
			if !p.convActive[j] {
				status, ended = parley.ConversationEnded, last+int64(24*time.Hour/time.Microsecond)
			}
			return append(a, p.convID(j), p.projectID, p.configIDs[int(j)%len(p.configIDs)], p.contactID(c), p.contactWaID(c),
				status, "{}", p.convCount[j], p.convCount[j], p.msgID(p.convLast[j]), "text", text(int(p.convLast[j])), last,
				nullMsg(p.convLastIn[j]), nullMsg(p.convLastOu[j]), last, ended, p.msgTime(p.convFirst[j]), last)
		})
}

// seedMessages inserts the messages in time order, each with a realistic
// Meta payload and, when outbound, its status history.
func (p *seedPlan) seedMessages(ctx context.Context, db *store.DB, progress func(done int)) error {
	seq := make([]int32, len(p.convFirst))
	cols := []string{"id", "project_id", "conversation_id", "whatsapp_config_id", "phone_number", "direction", "origin",
		"message_type", "content", "status", "processing_status", "whatsapp_message_id", "seq", "metadata",
		"message_type_data", "meta_payload", "statuses", "sent_at", "delivered_at", "read_at", "created_at", "updated_at"}
	n := len(p.msgConv)
	for lo := 0; lo < n; lo += rowsPerTx * 4 {
		hi := min(n, lo+rowsPerTx*4)
		err := bulk(ctx, db, "messages", cols, hi-lo, func(k int, a []any) []any {
			i := int32(lo + k)
			j := p.msgConv[i]
			seq[j]++
			phone := p.contactWaID(p.contactOf(j))
			at := p.msgTime(i)
			body := text(int(i))
			wamid := "wamid.HBgN" + strconv.FormatUint(mix(uint64(i)+5), 36) + strconv.Itoa(int(i))
			ts := strconv.FormatInt(at/1_000_000, 10)
			if inbound(int(i)) {
				payload := `{"from":"` + phone + `","id":"` + wamid + `","timestamp":"` + ts + `","text":{"body":"` + body + `"},"type":"text"}`
				return append(a, p.msgID(i), p.projectID, p.convID(j), p.configIDs[int(j)%len(p.configIDs)], phone,
					parley.DirectionInbound, "cloud_api", "text", body, parley.MessageRead, parley.ProcessingProcessed, wamid,
					seq[j], "{}", nil, payload, "[]", nil, nil, nil, at, at)
			}
			payload := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"` + phone + `","type":"text","text":{"body":"` + body + `"}}`
			var st strings.Builder
			st.WriteByte('[')
			for s, name := range []string{"sent", "delivered", "read"} {
				if s > 0 {
					st.WriteByte(',')
				}
				st.WriteString(`{"id":"` + wamid + `","status":"` + name + `","timestamp":"` + strconv.FormatInt(at/1_000_000+int64(s), 10) +
					`","recipient_id":"` + phone + `"}`)
			}
			st.WriteByte(']')
			return append(a, p.msgID(i), p.projectID, p.convID(j), p.configIDs[int(j)%len(p.configIDs)], phone,
				parley.DirectionOutbound, "cloud_api", "text", body, parley.MessageRead, parley.ProcessingProcessed, wamid,
				seq[j], "{}", nil, payload, st.String(), at+1_000_000, at+2_000_000, at+3_000_000, at, at+3_000_000)
		})
		if err != nil {
			return err
		}
		progress(hi)
	}
	return nil
}

// sortBy sorts s by key, ascending (stable for equal keys).
func sortBy(s []int, key func(int) int64) {
	slices.SortStableFunc(s, func(a, b int) int { return cmp.Compare(key(a), key(b)) })
}
