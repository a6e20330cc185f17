// Package nftnl programs one nftables table over netlink (NETLINK_NETFILTER),
// without the nft binary: a Batch encodes table, chain, rule, set and element
// operations straight into the bytes of one nfnetlink batch, and Conn sends it
// in one sendmsg, so the kernel applies all of it or none (as an nft
// transaction). Nothing is listed before a batch: the caller knows what it
// owns. Rule expressions are github.com/google/nftables/expr values.
//
// Unlike github.com/google/nftables' Conn, no message asks for an echo and only
// the last one for an acknowledgement: a batch of 500,000 operations gets one
// ack back, not 500,000 (which would overflow the socket's receive buffer).
package nftnl

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Family is an nftables table family (unix.NFPROTO_IPV4, unix.NFPROTO_IPV6).
type Family byte

// Message flags.
const (
	nlmRequest = unix.NLM_F_REQUEST
	nlmAck     = unix.NLM_F_ACK
	nlmCreate  = unix.NLM_F_CREATE
	nlmAppend  = unix.NLM_F_APPEND
)

// Constants golang.org/x/sys/unix lacks (linux/netfilter/nf_tables.h,
// linux/netfilter.h).
const (
	nftaTableUserdata = 6
	nfAccept          = 1
)

// maxElementsBytes bounds the elements of one NEWSETELEM/DELSETELEM message:
// their nested attribute's length is 16 bits.
const maxElementsBytes = 60000

// Batch is a sequence of operations on one table, encoded as nfnetlink
// messages. The zero value is not usable; use NewBatch.
type Batch struct {
	family Family
	table  string
	buf    []byte
	seq    uint32
	// offs is the offset of each operation's message (by seq - firstSeq): an
	// error names the operation by decoding it.
	offs     []uint32
	firstSeq uint32
	// buf is the chunk being written; chunks are the full ones before it,
	// starting at the offsets starts. A message never spans two chunks (its
	// lengths are patched in place), and the whole batch goes to the kernel in
	// one sendmsg of all chunks: no copy of a growing buffer of 100 MB.
	chunks [][]byte
	starts []int
	base   int
	// lastMsg is the (batch) offset of the last operation message: its flags
	// get the ack.
	lastMsg int
	// lastOpen is the offset in buf of the message being encoded.
	lastOpen int
	setID    uint32
	// run is the run of element operations being written, if any.
	run elemRun
	err error
}

// NewBatch starts a batch on table of family.
func NewBatch(family Family, table string) *Batch {
	b := &Batch{family: family, table: table, firstSeq: 1, seq: 0, lastMsg: -1, run: elemRun{list: -1}}
	b.buf = make([]byte, 0, 4096)
	b.starts = []int{0}
	b.begin(unix.NFNL_MSG_BATCH_BEGIN, nlmRequest)
	b.buf = appendNfgen(b.buf, 0, unix.NFNL_SUBSYS_NFTABLES)
	b.end()
	return b
}

// Len is the number of operations (messages) in the batch.
func (b *Batch) Len() int { return len(b.offs) }

// Size is the encoded size of the batch, in bytes.
func (b *Batch) Size() int { return b.base + len(b.buf) }

// chunkSize is the size past which a new chunk starts.
const chunkSize = 1 << 20

// at returns the batch's bytes from offset off to the end of its chunk.
func (b *Batch) at(off int) []byte {
	i := len(b.starts) - 1
	for i > 0 && b.starts[i] > off {
		i--
	}
	if i == len(b.chunks) {
		return b.buf[off-b.starts[i]:]
	}
	return b.chunks[i][off-b.starts[i]:]
}

// Err is the first encoding error (an expression that did not marshal).
func (b *Batch) Err() error { return b.err }

// describe returns the operation of the message with sequence number seq.
func (b *Batch) describe(seq uint32) string {
	i := int(seq) - int(b.firstSeq)
	if i < 0 || i >= len(b.offs) {
		return fmt.Sprintf("message %d", seq)
	}
	return describeMessage(b.at(int(b.offs[i])))
}

// describeMessage names the operation of an encoded message: "add rule to
// chain X", "delete set Y".
func describeMessage(m []byte) string {
	typ := binary.NativeEndian.Uint16(m[4:]) & 0xff
	l := binary.NativeEndian.Uint32(m)
	attrs := m[20:l]
	name := func(t uint16) string {
		for len(attrs) >= 4 {
			al := int(binary.NativeEndian.Uint16(attrs))
			at := binary.NativeEndian.Uint16(attrs[2:]) &^ unix.NLA_F_NESTED
			if al < 4 || al > len(attrs) {
				break
			}
			if at == t {
				return strings.TrimRight(string(attrs[4:al]), "\x00")
			}
			attrs = attrs[(al+3)&^3:]
		}
		return "?"
	}
	switch typ {
	case unix.NFT_MSG_NEWTABLE:
		return "add table " + name(unix.NFTA_TABLE_NAME)
	case unix.NFT_MSG_DELTABLE:
		return "delete table " + name(unix.NFTA_TABLE_NAME)
	case unix.NFT_MSG_NEWCHAIN:
		return "add chain " + name(unix.NFTA_CHAIN_NAME)
	case unix.NFT_MSG_DELCHAIN:
		return "delete chain " + name(unix.NFTA_CHAIN_NAME)
	case unix.NFT_MSG_NEWRULE:
		return "add rule to chain " + name(unix.NFTA_RULE_CHAIN)
	case unix.NFT_MSG_DELRULE:
		if c := name(unix.NFTA_RULE_CHAIN); c != "?" {
			return "flush chain " + c
		}
		return "flush table"
	case unix.NFT_MSG_NEWSET:
		return "add set " + name(unix.NFTA_SET_NAME)
	case unix.NFT_MSG_DELSET:
		return "delete set " + name(unix.NFTA_SET_NAME)
	case unix.NFT_MSG_NEWSETELEM:
		return "add elements to " + name(unix.NFTA_SET_ELEM_LIST_SET)
	case unix.NFT_MSG_DELSETELEM:
		return "delete elements from " + name(unix.NFTA_SET_ELEM_LIST_SET)
	}
	return fmt.Sprintf("message type %d", typ)
}

// bytes finishes the batch (ack on the last operation, BATCH_END) and returns
// it with the sequence number of the last operation; ok is false for an empty
// batch.
func (b *Batch) bytes() (msg [][]byte, lastSeq uint32, ok bool) {
	b.closeElements()
	if b.lastMsg < 0 {
		return nil, 0, false
	}
	last := b.at(b.lastMsg)
	flags := binary.NativeEndian.Uint16(last[6:])
	binary.NativeEndian.PutUint16(last[6:], flags|nlmAck)
	out := b.buf
	start := len(out)
	out = appendHeader(out, unix.NFNL_MSG_BATCH_END, nlmRequest, b.seq)
	out = appendNfgen(out, 0, unix.NFNL_SUBSYS_NFTABLES)
	binary.NativeEndian.PutUint32(out[start:], uint32(len(out)-start))
	return append(slices.Clip(b.chunks), out), b.seq - 1, true
}

// --- message framing ---

func appendHeader(buf []byte, typ uint16, flags uint16, seq uint32) []byte {
	var h [16]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	return append(buf, h[:]...)
}

func appendNfgen(buf []byte, family Family, resID uint16) []byte {
	return append(buf, byte(family), unix.NFNETLINK_V0, byte(resID>>8), byte(resID))
}

// begin starts a message; end sets its length. Only one message is open at a
// time; its start is b.lastOpen.
func (b *Batch) begin(typ uint16, flags uint16) {
	b.lastOpen = len(b.buf)
	b.buf = appendHeader(b.buf, typ, flags, b.seq)
	b.seq++
}

func (b *Batch) end() {
	binary.NativeEndian.PutUint32(b.buf[b.lastOpen:], uint32(len(b.buf)-b.lastOpen))
}

// op starts the message of one operation.
func (b *Batch) op(msgType uint16, flags uint16) {
	b.closeElements()
	if len(b.buf) >= chunkSize {
		b.chunks = append(b.chunks, b.buf)
		b.base += len(b.buf)
		b.starts = append(b.starts, b.base)
		// Room for one more message of the largest kind (a run of elements
		// is at most maxElementsBytes) without growing the chunk.
		b.buf = make([]byte, 0, chunkSize+2*maxElementsBytes)
	}
	b.offs = append(b.offs, uint32(b.base+len(b.buf)))
	b.begin(uint16(unix.NFNL_SUBSYS_NFTABLES)<<8|msgType, nlmRequest|flags)
	b.lastMsg = b.base + b.lastOpen
	b.buf = appendNfgen(b.buf, b.family, 0)
}

// --- attributes ---

func (b *Batch) attr(typ uint16, data []byte) {
	b.buf = appendAttr(b.buf, typ, data)
}

func appendAttr(buf []byte, typ uint16, data []byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	buf = append(append(buf, h[:]...), data...)
	var zeros [3]byte // padding to 4 bytes
	return append(buf, zeros[:(4-len(data)%4)%4]...)
}

func (b *Batch) str(typ uint16, s string) {
	b.buf = appendStr(b.buf, typ, s)
}

func appendStr(buf []byte, typ uint16, s string) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[:], uint16(4+len(s)+1))
	binary.NativeEndian.PutUint16(h[2:], typ)
	buf = append(append(buf, h[:]...), s...)
	var zeros [4]byte // the terminating NUL and the padding to 4 bytes
	return append(buf, zeros[:(len(s)+1+3)&^3-len(s)]...)
}

func (b *Batch) u32(typ uint16, v uint32) { b.be32(typ, v) }

// nest opens a nested attribute and returns its offset for unnest.
func (b *Batch) nest(typ uint16) int {
	off := len(b.buf)
	var h [4]byte
	binary.NativeEndian.PutUint16(h[2:], typ|unix.NLA_F_NESTED)
	b.buf = append(b.buf, h[:]...)
	return off
}

func (b *Batch) unnest(off int) {
	l := len(b.buf) - off
	if l > 0xffff && b.err == nil {
		b.err = fmt.Errorf("nested attribute of %d bytes exceeds 65535", l)
	}
	binary.NativeEndian.PutUint16(b.buf[off:], uint16(l))
}

// Comment is a userdata TLV holding a comment of type typ (0 for tables,
// chains, rules and elements; 7 for sets).
func Comment(typ byte, s string) []byte { return comment(typ, s) }

func comment(typ byte, s string) []byte {
	if len(s) > 254 {
		s = s[:254]
	}
	out := []byte{typ, byte(len(s) + 1)}
	out = append(out, s...)
	return append(out, 0)
}

// --- tables ---

// AddTable adds the table (no error when it exists), with a comment.
func (b *Batch) AddTable(tableComment string) {
	b.op(unix.NFT_MSG_NEWTABLE, nlmCreate)
	b.str(unix.NFTA_TABLE_NAME, b.table)
	b.u32(unix.NFTA_TABLE_FLAGS, 0)
	if tableComment != "" {
		b.attr(nftaTableUserdata, comment(0, tableComment))
	}
	b.end()
}

// FlushTable deletes every rule of every chain of the table.
func (b *Batch) FlushTable() {
	b.op(unix.NFT_MSG_DELRULE, 0)
	b.str(unix.NFTA_RULE_TABLE, b.table)
	b.end()
}

// DeleteTable deletes the table and everything in it.
func (b *Batch) DeleteTable() {
	b.op(unix.NFT_MSG_DELTABLE, 0)
	b.str(unix.NFTA_TABLE_NAME, b.table)
	b.end()
}

// --- chains ---

// BaseChain is what makes a chain a base chain.
type BaseChain struct {
	Type     string // "filter", "nat"
	Hook     uint32 // unix.NF_INET_*
	Priority int32
}

// AddChain adds a chain (no error when it exists; a base chain's hook and
// priority cannot be changed that way). base is nil for a regular chain.
func (b *Batch) AddChain(name string, base *BaseChain) {
	b.op(unix.NFT_MSG_NEWCHAIN, nlmCreate)
	b.str(unix.NFTA_CHAIN_TABLE, b.table)
	b.str(unix.NFTA_CHAIN_NAME, name)
	if base != nil {
		h := b.nest(unix.NFTA_CHAIN_HOOK)
		b.u32(unix.NFTA_HOOK_HOOKNUM, base.Hook)
		b.u32(unix.NFTA_HOOK_PRIORITY, uint32(base.Priority))
		b.unnest(h)
		b.str(unix.NFTA_CHAIN_TYPE, base.Type)
		b.u32(unix.NFTA_CHAIN_POLICY, nfAccept)
	}
	b.end()
}

// FlushChain deletes every rule of a chain.
func (b *Batch) FlushChain(name string) {
	b.op(unix.NFT_MSG_DELRULE, 0)
	b.str(unix.NFTA_RULE_TABLE, b.table)
	b.str(unix.NFTA_RULE_CHAIN, name)
	b.end()
}

// DeleteChain deletes an empty, unreferenced chain.
func (b *Batch) DeleteChain(name string) {
	b.op(unix.NFT_MSG_DELCHAIN, 0)
	b.str(unix.NFTA_CHAIN_TABLE, b.table)
	b.str(unix.NFTA_CHAIN_NAME, name)
	b.end()
}

// --- rules ---

// AddRule appends a rule of exprs to chain; desc (the rule's text) names it in
// an encoding error.
func (b *Batch) AddRule(chain string, exprs []expr.Any, ruleComment, desc string) {
	b.op(unix.NFT_MSG_NEWRULE, nlmCreate|nlmAppend)
	b.str(unix.NFTA_RULE_TABLE, b.table)
	b.str(unix.NFTA_RULE_CHAIN, chain)
	list := b.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range exprs {
		elem := b.nest(unix.NFTA_LIST_ELEM)
		if !b.expr(e) {
			// Forms appendExpr does not know: through the library (an
			// allocation per attribute; only the fixed rules use them).
			data, err := expr.Marshal(byte(b.family), e)
			if err != nil && b.err == nil {
				b.err = fmt.Errorf("rule %q in chain %s: %w", desc, chain, err)
			}
			b.buf = append(b.buf, data...)
		}
		b.unnest(elem)
	}
	b.unnest(list)
	if ruleComment != "" {
		b.attr(unix.NFTA_RULE_USERDATA, comment(0, ruleComment))
	}
	b.end()
}

// --- sets ---

// Set describes a named set or map.
type Set struct {
	Name string
	// KeyType is the nft datatype magic of the key (concatenations combined as
	// nft does); KeyLen its length in bytes (each concatenated field padded to 4).
	KeyType, KeyLen uint32
	// Verdict makes the set a verdict map.
	Verdict bool
	// DataType and DataLen, when DataLen > 0, make the set a data map (its
	// values are DataLen bytes of datatype DataType, as KeyType is built).
	DataType, DataLen uint32
	// Interval, Timeout (with Dynamic) are the set's flags.
	Interval, Dynamic, HasTimeout bool
	// Timeout is the default timeout of elements (HasTimeout).
	TimeoutMs uint64
	Comment   string
	// Userdata, when set, is the set's whole userdata (nft's TLVs: key and data
	// byte order, "typeof" expressions, comment) instead of Comment alone.
	Userdata []byte
}

// Set flags (linux/netfilter/nf_tables.h).
const (
	setAnonymous = 0x1
	setConstant  = 0x2
	setInterval  = 0x4
	setMap       = 0x8
	setTimeout   = 0x10
	setEval      = 0x20
)

// AddSet adds a set or map (no error when it exists with the same definition).
func (b *Batch) AddSet(s Set) {
	b.op(unix.NFT_MSG_NEWSET, nlmCreate)
	b.str(unix.NFTA_SET_TABLE, b.table)
	b.str(unix.NFTA_SET_NAME, s.Name)
	var flags uint32
	if s.Interval {
		flags |= setInterval
	}
	if s.Verdict || s.DataLen > 0 {
		flags |= setMap
	}
	if s.HasTimeout {
		flags |= setTimeout
	}
	if s.Dynamic {
		flags |= setEval
	}
	b.u32(unix.NFTA_SET_FLAGS, flags)
	b.u32(unix.NFTA_SET_KEY_TYPE, s.KeyType)
	b.u32(unix.NFTA_SET_KEY_LEN, s.KeyLen)
	if s.Verdict {
		b.u32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
		b.u32(unix.NFTA_SET_DATA_LEN, 0)
	} else if s.DataLen > 0 {
		b.u32(unix.NFTA_SET_DATA_TYPE, s.DataType)
		b.u32(unix.NFTA_SET_DATA_LEN, s.DataLen)
	}
	if s.HasTimeout && s.TimeoutMs > 0 {
		b.attr(unix.NFTA_SET_TIMEOUT, binary.BigEndian.AppendUint64(nil, s.TimeoutMs))
	}
	b.setID++
	b.u32(unix.NFTA_SET_ID, b.setID)
	switch {
	case s.Userdata != nil:
		b.attr(unix.NFTA_SET_USERDATA, s.Userdata)
	case s.Comment != "":
		b.attr(unix.NFTA_SET_USERDATA, comment(7, s.Comment))
	}
	b.end()
}

// AnonSetName is the name a rule's lookup gives an anonymous set added to the
// same batch (the kernel picks the real one, __setN), with the set's id.
const AnonSetName = "__set%d"

// AddAnonIntervalSet adds a constant anonymous interval set of keys (each
// element an interval [start, end), end nil for one that reaches the end of the
// address space) and returns its id for a lookup (expr.Lookup SetName
// AnonSetName, SetID id) in a rule of this batch. The intervals must not
// overlap.
func (b *Batch) AddAnonIntervalSet(keyType, keyLen uint32, elems []Element) (id uint32) {
	b.setID++
	id = b.setID
	b.op(unix.NFT_MSG_NEWSET, nlmCreate)
	b.str(unix.NFTA_SET_TABLE, b.table)
	b.str(unix.NFTA_SET_NAME, AnonSetName)
	b.u32(unix.NFTA_SET_FLAGS, setAnonymous|setConstant|setInterval)
	b.u32(unix.NFTA_SET_KEY_TYPE, keyType)
	b.u32(unix.NFTA_SET_KEY_LEN, keyLen)
	b.u32(unix.NFTA_SET_ID, id)
	b.end()
	b.op(unix.NFT_MSG_NEWSETELEM, nlmCreate)
	b.str(unix.NFTA_SET_ELEM_LIST_TABLE, b.table)
	b.str(unix.NFTA_SET_ELEM_LIST_SET, AnonSetName)
	b.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
	list := b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for i := range elems {
		b.element(&elems[i], true)
	}
	b.unnest(list)
	b.end()
	return id
}

// DeleteSet deletes a set no rule refers to.
func (b *Batch) DeleteSet(name string) {
	b.op(unix.NFT_MSG_DELSET, 0)
	b.str(unix.NFTA_SET_TABLE, b.table)
	b.str(unix.NFTA_SET_NAME, name)
	b.end()
}

// FlushSet deletes every element of a set or map.
func (b *Batch) FlushSet(name string) {
	b.op(unix.NFT_MSG_DELSETELEM, 0)
	b.str(unix.NFTA_SET_ELEM_LIST_TABLE, b.table)
	b.str(unix.NFTA_SET_ELEM_LIST_SET, name)
	b.end()
}

// Element is one set or map element.
type Element struct {
	Key []byte
	// IntervalEnd marks the end (exclusive) of an interval in an interval set.
	IntervalEnd bool
	// VerdictCode and VerdictChain are a verdict map element's value.
	VerdictCode  int32
	VerdictChain string
	HasVerdict   bool
	// Data is a data map element's value (nil in sets and verdict maps).
	Data    []byte
	Comment string
}

// AddElements adds elements to a set or map (several messages when many).
func (b *Batch) AddElements(set string, elems []Element) {
	b.BeginElements(set, true)
	for i := range elems {
		b.Element(&elems[i])
	}
	b.EndElements()
}

// DeleteElements deletes elements (by key) from a set or map.
func (b *Batch) DeleteElements(set string, elems []Element) {
	b.BeginElements(set, false)
	for i := range elems {
		b.Element(&elems[i])
	}
	b.EndElements()
}

// elemRun is a run of element operations on one set (BeginElements), written
// as they come: one message until its elements reach maxElementsBytes, then
// the next. list is the offset in buf of the open message's element list, -1
// when no message is open.
type elemRun struct {
	active bool
	add    bool
	set    string
	list   int
}

// BeginElements starts a run of additions (add) or deletions of elements of
// set: each Element is encoded at once into the batch (no copy of the
// elements is kept), in as many messages as their size needs, and EndElements
// ends the run. Another operation in between ends the current message (the
// run's next element starts a new one); a run without elements writes
// nothing.
func (b *Batch) BeginElements(set string, add bool) {
	b.EndElements()
	b.run = elemRun{active: true, add: add, set: set, list: -1}
}

// Element adds e to the run BeginElements started (its key only, for a
// deletion).
func (b *Batch) Element(e *Element) {
	if !b.run.active {
		if b.err == nil {
			b.err = fmt.Errorf("nftnl: element outside BeginElements/EndElements")
		}
		return
	}
	if b.run.list >= 0 && len(b.buf)-b.run.list >= maxElementsBytes {
		b.closeElements()
	}
	if b.run.list < 0 {
		msg, flags := uint16(unix.NFT_MSG_DELSETELEM), uint16(0)
		if b.run.add {
			msg, flags = unix.NFT_MSG_NEWSETELEM, nlmCreate
		}
		b.op(msg, flags)
		b.str(unix.NFTA_SET_ELEM_LIST_TABLE, b.table)
		b.str(unix.NFTA_SET_ELEM_LIST_SET, b.run.set)
		b.run.list = b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	}
	b.element(e, b.run.add)
}

// EndElements ends the run of BeginElements (none: nothing to do).
func (b *Batch) EndElements() {
	b.closeElements()
	b.run = elemRun{list: -1}
}

func (b *Batch) closeElements() {
	if b.run.list < 0 {
		return
	}
	b.unnest(b.run.list)
	b.end()
	b.run.list = -1
}

func (b *Batch) element(e *Element, withValue bool) {
	el := b.nest(unix.NFTA_LIST_ELEM)
	k := b.nest(unix.NFTA_SET_ELEM_KEY)
	b.attr(unix.NFTA_DATA_VALUE, e.Key)
	b.unnest(k)
	if e.IntervalEnd {
		b.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
	}
	if withValue && e.HasVerdict {
		d := b.nest(unix.NFTA_SET_ELEM_DATA)
		b.verdict(uint32(e.VerdictCode), e.VerdictChain)
		b.unnest(d)
	} else if withValue && e.Data != nil {
		d := b.nest(unix.NFTA_SET_ELEM_DATA)
		b.attr(unix.NFTA_DATA_VALUE, e.Data)
		b.unnest(d)
	}
	if withValue && e.Comment != "" {
		b.attr(unix.NFTA_SET_ELEM_USERDATA, comment(0, e.Comment))
	}
	b.unnest(el)
}
