// Package testkit helps test Sluice against real parts: an embedded Kafka
// cluster on random ports, deterministic event generators, brute-force
// oracles of the time rule, fault injection and acceptance suites.
package testkit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schemas"
)

// The shape of the generated traffic. Rates are per event.
const (
	fraudRate      = 0.01  // share of events that are fraud
	refundRate     = 0.02  // share of honest events that are refunds (amount < 0)
	bigRate        = 0.003 // share of honest events with a big amount
	nullCountry    = 0.05  // share of events without a country
	travelRate     = 0.03  // share of honest events from abroad
	unlabelledRate = 0.2   // share of events whose is_fraud is still unknown
	regularRate    = 0.5   // share of honest events at one of the user's regular merchants
	regulars       = 3     // regular merchants per user
	busyShare      = 0.7   // share of events whose user is drawn from the skewed draw
)

// transactionsFields lists the fields of the transactions stream, in schema
// order.
var transactionsFields = [...]schemas.Field{
	{Name: "txn_id", Type: schemas.String},
	{Name: "user_id", Type: schemas.String},
	{Name: "merchant_id", Type: schemas.String},
	{Name: "amount", Type: schemas.Float64},
	{Name: "country", Type: schemas.String, Nullable: true},
	{Name: "is_fraud", Type: schemas.Bool, Nullable: true},
	{Name: "ts", Type: schemas.Timestamp},
}

// countries are the home countries of users, with their weights.
var countries = [...]struct {
	code   string
	weight int
}{
	{"US", 40}, {"GB", 12}, {"DE", 10}, {"FR", 8}, {"IN", 8},
	{"BR", 6}, {"CA", 6}, {"JP", 4}, {"NG", 3}, {"AU", 3},
}

// FraudSchema returns the schema of the fraud example's transactions stream
// (examples/fraud/features/transactions.yaml), the events FraudGen makes.
func FraudSchema() *schemas.Schema {
	return &schemas.Schema{
		Stream:        "transactions",
		Version:       1,
		Fields:        slices.Clone(transactionsFields[:]),
		TimeField:     "ts",
		TimeUnit:      schemas.Milliseconds,
		UnknownFields: schemas.RejectUnknown,
		KeyFields:     []string{"user_id"},
	}
}

// FraudGen makes card transactions in the schema of the fraud example. The
// same seed and the same sequence of times give the same events.
//
// Users are "u00001", "u00002", ...; activity is skewed so that a few users,
// u00001 the busiest, make many more transactions than the rest. Merchants
// are "m00001", ...; each user mostly pays a few regular ones. Amounts are
// log-normal around a few tens, with rare big ones and about 2% refunds
// (negative amounts). About 1% of transactions are fraud: larger, often
// abroad, at any merchant. A country is missing about 5% of the time and
// the fraud label (is_fraud) about 20% of the time.
//
// A FraudGen is not safe for concurrent use.
type FraudGen struct {
	rng       *rand.Rand
	busyUser  *rand.Zipf
	busyMerch *rand.Zipf
	users     []string // ids by index
	merchants []string
	home      []uint8 // index into countries, per user
	seq       uint64  // transactions made so far
}

// NewFraudGen returns a generator for users users and merchants merchants;
// numbers below 1 count as 1.
func NewFraudGen(seed int64, users, merchants int) *FraudGen {
	users, merchants = max(users, 1), max(merchants, 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	g := &FraudGen{
		rng:       rng,
		busyUser:  rand.NewZipf(rng, 1.1, 10, uint64(users-1)),
		busyMerch: rand.NewZipf(rng, 1.1, 5, uint64(merchants-1)),
		users:     make([]string, users),
		merchants: make([]string, merchants),
		home:      make([]uint8, users),
	}
	for i := range g.users {
		g.users[i] = padID('u', i+1)
		g.home[i] = g.country()
	}
	for i := range g.merchants {
		g.merchants[i] = padID('m', i+1)
	}
	return g
}

// padID returns prefix followed by n in at least five digits.
func padID(prefix byte, n int) string {
	s := strconv.Itoa(n)
	b := make([]byte, 0, 6+len(s))
	b = append(b, prefix)
	for i := len(s); i < 5; i++ {
		b = append(b, '0')
	}
	return string(append(b, s...))
}

// country draws a country index by weight.
func (g *FraudGen) country() uint8 {
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	n := g.rng.IntN(total)
	for i, c := range countries {
		if n < c.weight {
			return uint8(i)
		}
		n -= c.weight
	}
	return 0
}

// Next returns the next event as a map in the transactions schema: txn_id,
// user_id, merchant_id (string), amount (float64), country (string or nil),
// is_fraud (bool or nil) and ts (time.Time in UTC, ts truncated to
// milliseconds). It is deterministic for the seed and the times passed.
func (g *FraudGen) Next(ts time.Time) map[string]any {
	g.seq++
	u := g.user()
	fraud := g.rng.Float64() < fraudRate

	ev := map[string]any{
		"txn_id":      "t" + strconv.FormatUint(g.seq, 10),
		"user_id":     g.users[u],
		"merchant_id": g.merchants[g.merchant(u, fraud)],
		"amount":      g.amount(fraud),
		"country":     g.txnCountry(u, fraud),
		"is_fraud":    nil,
		"ts":          time.UnixMilli(ts.UnixMilli()).UTC(),
	}
	if g.rng.Float64() >= unlabelledRate {
		ev["is_fraud"] = fraud
	}
	return ev
}

// user draws a user index: mostly from a skewed draw, the rest uniformly so
// that quiet users show up too.
func (g *FraudGen) user() int {
	if g.rng.Float64() < busyShare {
		return int(g.busyUser.Uint64())
	}
	return g.rng.IntN(len(g.users))
}

// merchant draws a merchant index for user u.
func (g *FraudGen) merchant(u int, fraud bool) int {
	n := len(g.merchants)
	switch {
	case fraud:
		return g.rng.IntN(n)
	case g.rng.Float64() < regularRate:
		// The user's k-th regular merchant, a fixed spread of u.
		k := g.rng.IntN(regulars)
		return (u*7919 + k*104729) % n
	}
	return int(g.busyMerch.Uint64())
}

// amount draws an amount, rounded to cents and never zero.
func (g *FraudGen) amount(fraud bool) float64 {
	var a float64
	switch p := g.rng.Float64(); {
	case fraud:
		a = g.logNormal(700, 0.9)
	case p < refundRate:
		a = -g.logNormal(30, 0.8)
	case p < refundRate+bigRate:
		a = g.logNormal(2500, 0.5)
	default:
		a = g.logNormal(35, 1.0)
	}
	a = math.Round(a*100) / 100
	if a == 0 {
		a = 0.01
	}
	return a
}

// logNormal draws from a log-normal distribution with the given median.
func (g *FraudGen) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

// txnCountry draws the country of a transaction of user u, or nil.
func (g *FraudGen) txnCountry(u int, fraud bool) any {
	if g.rng.Float64() < nullCountry {
		return nil
	}
	home := g.home[u]
	abroad := g.rng.Float64() < travelRate
	if fraud {
		abroad = g.rng.Float64() < 0.7
	}
	if !abroad {
		return countries[home].code
	}
	// Any country but home.
	c := g.rng.IntN(len(countries) - 1)
	if c >= int(home) {
		c++
	}
	return countries[c].code
}

// JSON renders an event as a compact JSON object: the fields of the
// transactions schema in schema order, then any other fields sorted by name,
// then "_event_id" when withID. Timestamps are integer epoch milliseconds.
// A field missing from ev is left out; a nil value is written as null. The
// event id is ev["_event_id"] when it is a string, else the txn_id.
func (g *FraudGen) JSON(ev map[string]any, withID bool) []byte {
	return AppendFraudJSON(make([]byte, 0, 192), ev, withID)
}

// AppendFraudJSON appends the JSON of an event, as FraudGen.JSON renders
// it, to dst.
func AppendFraudJSON(dst []byte, ev map[string]any, withID bool) []byte {
	dst = append(dst, '{')
	first := true
	field := func(name string, v any) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, v)
	}
	for _, f := range transactionsFields {
		if v, ok := ev[f.Name]; ok {
			field(f.Name, v)
		}
	}
	var extra []string
	for k := range ev {
		if k != schemas.EventIDField && !isTransactionsField(k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		field(k, ev[k])
	}
	if withID {
		id, ok := ev[schemas.EventIDField].(string)
		if !ok {
			id, _ = ev["txn_id"].(string)
		}
		field(schemas.EventIDField, id)
	}
	return append(dst, '}')
}

func isTransactionsField(name string) bool {
	for _, f := range transactionsFields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// appendJSONValue appends one value in JSON.
func appendJSONValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendJSONString(dst, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, x, 'f', -1, 64)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case bool:
		return strconv.AppendBool(dst, x)
	case time.Time:
		return strconv.AppendInt(dst, x.UnixMilli(), 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 is replaced
// with U+FFFD so that the output is always valid JSON.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
