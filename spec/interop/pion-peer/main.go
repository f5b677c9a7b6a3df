// pion-peer: a CLI ICE peer on pion/ice v2 speaking the line protocol of
// peer-protocol.md (JSON lines on stdin/stdout, logs on stderr), the pion
// counterpart of spec/interop/libnice-peer.py for the interop tests.
//
//	pion-peer --role controlling|controlled [--count N] [--size S] [--window W]
//	  [--host ADDR] [--stun HOST:PORT] [--turn HOST:PORT --turn-user U --turn-pass P]
//	  [--trickle] [--nomination regular|aggressive] [--announce ADDR]
//	  [--timeout SECONDS] [--verbose]
//
// Built against Debian's packaged sources (golang-github-pion-ice.v2-dev) in
// GOPATH mode, without module downloads: spec/support/pion.ts builds it.
//
// What pion/ice v2 (2.3.1) can and cannot do, as the flags show it:
//   - nomination: a controlling pion agent nominates the regular way only (a
//     separate check with USE-CANDIDATE on a pair that already succeeded,
//     controllingSelector); `--nomination aggressive` is therefore refused
//     with --role controlling. A controlled pion agent accepts either kind
//     (controlledSelector), so the flag is accepted and has no effect there,
//     as the protocol makes it a property of the controlling peer.
//   - trickle: pion gathers and accepts candidates one by one; it has no
//     notion of the peer's end-of-candidates, so that message is read and
//     ignored.
//   - --announce: pion's 1:1 NAT mapping (NAT1To1IPs, host type).
//   - refused (exit 2): --lite (pion's Lite agent still sends a triggered
//     check for every request it answers, which the protocol's --lite forbids),
//     --tcp and --no-udp (passive ICE-TCP only, through a TCPMux), --dtls-psk,
//     --forward, --session-file, --restore, --relay-only.
//
// Exit codes: 0 when stdin closes after the work is done (controlling: `done`
// written; controlled: `connected` written), 1 on any failure (an `error` line
// is written first), 2 on bad or unsupported arguments (an `error` line too).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
)

const (
	component = 1
	// A datagram without an echo after this long is lost and frees its window slot.
	lossTimeout = 500 * time.Millisecond
	// 0x80 marker + 4-byte big-endian sequence number.
	header = 5
	// pion reads each candidate's socket into a buffer of this size (receiveMTU).
	maxSize = 8192
)

const usage = `usage: pion-peer --role controlling|controlled [options]

A CLI ICE peer on pion/ice v2 speaking the line protocol of peer-protocol.md:
JSON lines on stdin/stdout, logs on stderr.

  --role controlling|controlled   ICE role (required)
  --count N                       datagrams the controlling peer sends (default 1000)
  --size S                        bytes per datagram (default 1000, at most 8192: pion's receive buffer)
  --window W                      datagrams in flight at most (default 32)
  --host ADDR                     gather host candidates only on ADDR (default: all interfaces)
  --stun HOST:PORT                STUN server for server-reflexive candidates
  --turn HOST:PORT --turn-user U --turn-pass P
                                  TURN server (UDP) for relayed candidates
  --trickle                       send candidates one by one as they are gathered
  --nomination regular|aggressive nomination mode of the controlling peer (default regular;
                                  pion nominates the regular way only, so aggressive needs
                                  --role controlled, where it changes nothing)
  --announce ADDR                 advertise ADDR in place of --host's address in host candidates
  --timeout SECONDS               give up if not connected by then (default 30)
  --verbose                       pion's debug logs on stderr (PION_LOG_TRACE=all etc. work too)
  --help                          print this and exit

Not supported by pion/ice v2 (exit 2): --lite, --tcp, --no-udp, --dtls-psk, --forward,
--session-file, --restore, --relay-only.
`

// ------------------------------------------------------------------ output

var outMu sync.Mutex

// emit writes one protocol message on stdout (os.Stdout is unbuffered).
func emit(msg map[string]interface{}) {
	b, err := json.Marshal(msg)
	if err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}

var logPrefix = "pion-peer:"

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s %s\n", logPrefix, fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------- arguments

type hostPort struct {
	host string
	port int
}

func (h hostPort) String() string {
	if strings.Contains(h.host, ":") {
		return "[" + h.host + "]:" + strconv.Itoa(h.port)
	}
	return h.host + ":" + strconv.Itoa(h.port)
}

type args struct {
	role       string
	count      int
	size       int
	window     int
	host       string
	stun       *hostPort
	turn       *hostPort
	turnUser   string
	turnPass   string
	trickle    bool
	nomination string
	announce   string
	timeout    time.Duration
	verbose    bool
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var errHelp = errors.New("help")

// seenFlag records that a flag was given (flag.BoolFunc is Go 1.21; Debian's Go may be older).
type seenFlag struct {
	seen    func()
	boolean bool
}

func (f seenFlag) String() string   { return "" }
func (f seenFlag) Set(string) error { f.seen(); return nil }
func (f seenFlag) IsBoolFlag() bool { return f.boolean }

func parseHostPort(name, v string) (*hostPort, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return nil, usageError{fmt.Sprintf("--%s must be HOST:PORT (IPv6 as [ADDR]:PORT), got %q", name, v)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return nil, usageError{fmt.Sprintf("--%s must be HOST:PORT (IPv6 as [ADDR]:PORT), got %q", name, v)}
	}
	return &hostPort{host, p}, nil
}

func integer(name, v string, dflt, min, max int) (int, error) {
	if v == "" {
		return dflt, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max || strings.TrimLeft(v, "0123456789") != "" {
		return 0, usageError{fmt.Sprintf("--%s must be an integer from %d to %d, got %q", name, min, max, v)}
	}
	return n, nil
}

func parseArgs(argv []string) (*args, error) {
	fs := flag.NewFlagSet("pion-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var (
		role, count, size, window, host, stun, turn, turnUser, turnPass, nomination, announce, timeout string
		trickle, verbose, help                                                                         bool
	)
	fs.StringVar(&role, "role", "", "")
	fs.StringVar(&count, "count", "", "")
	fs.StringVar(&size, "size", "", "")
	fs.StringVar(&window, "window", "", "")
	fs.StringVar(&host, "host", "", "")
	fs.StringVar(&stun, "stun", "", "")
	fs.StringVar(&turn, "turn", "", "")
	fs.StringVar(&turnUser, "turn-user", "\x00", "")
	fs.StringVar(&turnPass, "turn-pass", "\x00", "")
	fs.BoolVar(&trickle, "trickle", false, "")
	fs.StringVar(&nomination, "nomination", "regular", "")
	fs.StringVar(&announce, "announce", "", "")
	fs.StringVar(&timeout, "timeout", "", "")
	fs.BoolVar(&verbose, "verbose", false, "")
	fs.BoolVar(&help, "help", false, "")
	// The protocol's optional features pion cannot do: known, so that the
	// refusal names them, and refused.
	unsupported := map[string]string{
		"lite":         "pion/ice v2's Lite agent sends a triggered check for every request it answers; an ICE-lite agent never sends checks",
		"tcp":          "pion/ice v2 has passive ICE-TCP only, through a TCPMux listener, not the active and passive host candidates --tcp asks for",
		"no-udp":       "it needs --tcp, which this peer does not have",
		"dtls-psk":     "this peer has no DTLS layer",
		"forward":      "this peer has no forwarding to a local service",
		"session-file": "pion/ice v2 cannot export or resume a session",
		"restore":      "pion/ice v2 cannot export or resume a session",
		"relay-only":   "not part of this peer",
	}
	given := map[string]bool{}
	for name := range unsupported {
		n := name
		boolean := n == "lite" || n == "tcp" || n == "no-udp" || n == "restore" || n == "relay-only"
		fs.Var(seenFlag{func() { given[n] = true }, boolean}, n, "")
	}
	if err := fs.Parse(argv); err != nil {
		return nil, usageError{strings.Replace(err.Error(), "flag provided but not defined: -", "unknown argument --", 1)}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if help {
		return nil, errHelp
	}
	for _, name := range []string{"lite", "tcp", "no-udp", "dtls-psk", "forward", "session-file", "restore", "relay-only"} {
		if given[name] {
			return nil, usageError{fmt.Sprintf("--%s is not supported by the pion peer: %s", name, unsupported[name])}
		}
	}
	a := &args{trickle: trickle, verbose: verbose, turnUser: turnUser, turnPass: turnPass}
	switch role {
	case "controlling", "controlled":
		a.role = role
	case "":
		return nil, usageError{"--role is required (controlling or controlled)"}
	default:
		return nil, usageError{fmt.Sprintf("--role must be controlling or controlled, got %q", role)}
	}
	switch nomination {
	case "regular":
	case "aggressive":
		if role == "controlling" {
			return nil, usageError{"--nomination aggressive is not supported by the pion peer as --role controlling: " +
				"a controlling pion/ice v2 agent nominates the regular way only"}
		}
	default:
		return nil, usageError{fmt.Sprintf("--nomination must be regular or aggressive, got %q", nomination)}
	}
	a.nomination = nomination
	var err error
	if a.count, err = integer("count", count, 1000, 0, 0xffffffff); err != nil {
		return nil, err
	}
	if a.size, err = integer("size", size, 1000, header, maxSize); err != nil {
		return nil, err
	}
	if a.window, err = integer("window", window, 32, 1, 1000000); err != nil {
		return nil, err
	}
	if host != "" {
		if net.ParseIP(host) == nil {
			return nil, usageError{fmt.Sprintf("--host must be an IP address, got %q", host)}
		}
		a.host = host
	}
	if announce != "" {
		ip := net.ParseIP(announce)
		if ip == nil {
			return nil, usageError{fmt.Sprintf("--announce must be an IP address, got %q", announce)}
		}
		if a.host == "" {
			return nil, usageError{"--announce needs --host (the local address it stands for)"}
		}
		if (ip.To4() == nil) != (net.ParseIP(a.host).To4() == nil) {
			return nil, usageError{"--announce and --host must be of the same address family"}
		}
		a.announce = announce
	}
	a.timeout = 30 * time.Second
	if timeout != "" {
		s, err := strconv.ParseFloat(timeout, 64)
		if err != nil || !(s > 0) {
			return nil, usageError{fmt.Sprintf("--timeout must be a positive number of seconds, got %q", timeout)}
		}
		a.timeout = time.Duration(s * float64(time.Second))
	}
	if stun != "" {
		if a.stun, err = parseHostPort("stun", stun); err != nil {
			return nil, err
		}
	}
	if turn != "" {
		if a.turn, err = parseHostPort("turn", turn); err != nil {
			return nil, err
		}
		if turnUser == "\x00" || turnPass == "\x00" {
			return nil, usageError{"--turn needs --turn-user and --turn-pass"}
		}
	} else if turnUser != "\x00" || turnPass != "\x00" {
		return nil, usageError{"--turn-user and --turn-pass need --turn"}
	}
	return a, nil
}

// ------------------------------------------------------------- candidates

// describe is the protocol's form of a candidate: RFC 8839 candidate-attribute
// without "a=" (pion's Marshal leaves out the "candidate:" prefix).
func describe(c ice.Candidate) string {
	return "candidate:" + c.Marshal()
}

// parseRemote reads a candidate in the protocol's form (an "a=" and the
// "candidate:" prefix are optional).
func parseRemote(text string) (ice.Candidate, error) {
	s := strings.TrimPrefix(strings.TrimSpace(text), "a=")
	s = strings.TrimPrefix(s, "candidate:")
	return ice.UnmarshalCandidate(s)
}

// -------------------------------------------------------------------- peer

type message = map[string]interface{}

type peer struct {
	args  *args
	agent *ice.Agent

	remoteCredsAt time.Time
	started       bool
	connected     bool
	workDone      bool
	conn          *ice.Conn

	connectedCh chan connectResult
	failedCh    chan struct{}
	doneCh      chan message
	echoes      chan uint32
	dataOver    chan struct{}
}

type connectResult struct {
	conn *ice.Conn
	err  error
}

func newAgent(a *args) (*ice.Agent, error) {
	factory := logging.NewDefaultLoggerFactory() // reads PION_LOG_TRACE, PION_LOG_DEBUG ...
	factory.Writer = os.Stderr                   // stdout belongs to the protocol
	if a.verbose && factory.DefaultLogLevel < logging.LogLevelDebug {
		factory.DefaultLogLevel = logging.LogLevelDebug
	}
	networkTypes := []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}
	var ipFilter func(net.IP) bool
	if a.host != "" {
		want := net.ParseIP(a.host)
		if want.To4() != nil {
			networkTypes = []ice.NetworkType{ice.NetworkTypeUDP4}
		} else {
			networkTypes = []ice.NetworkType{ice.NetworkTypeUDP6}
		}
		ipFilter = func(ip net.IP) bool { return ip.Equal(want) }
	}
	var urls []*ice.URL
	if a.stun != nil {
		u, err := ice.ParseURL("stun:" + a.stun.String())
		if err != nil {
			return nil, fmt.Errorf("--stun %s: %w", a.stun, err)
		}
		urls = append(urls, u)
	}
	if a.turn != nil {
		u, err := ice.ParseURL("turn:" + a.turn.String() + "?transport=udp")
		if err != nil {
			return nil, fmt.Errorf("--turn %s: %w", a.turn, err)
		}
		u.Username = a.turnUser
		u.Password = a.turnPass
		urls = append(urls, u)
	}
	cfg := &ice.AgentConfig{
		Urls:         urls,
		NetworkTypes: networkTypes,
		// Loopback only when asked for, as --host 127.0.0.1 does (pion skips it otherwise).
		IncludeLoopback: a.host != "" && net.ParseIP(a.host).IsLoopback(),
		IPFilter:        ipFilter,
		// No multicast socket: every packet of the peer goes where the tests say.
		MulticastDNSMode: ice.MulticastDNSModeDisabled,
		LoggerFactory:    factory,
	}
	if a.announce != "" {
		cfg.NAT1To1IPs = []string{a.announce + "/" + a.host}
		cfg.NAT1To1IPCandidateType = ice.CandidateTypeHost
	}
	return ice.NewAgent(cfg)
}

func (p *peer) finish(code int, errMsg string) {
	if errMsg != "" {
		logf("fatal: %s", errMsg)
		emit(message{"type": "error", "message": errMsg})
	}
	if p.agent != nil {
		if err := p.agent.Close(); err != nil && !errors.Is(err, ice.ErrClosed) {
			logf("closing the agent: %v", err)
		}
	}
	os.Exit(code)
}

// setCredentials starts the checks (Dial or Accept) with the first remote
// credentials; at is when the message carrying them arrived.
func (p *peer) setCredentials(ufrag, pwd interface{}, at time.Time) error {
	u, ok1 := ufrag.(string)
	w, ok2 := pwd.(string)
	if !ok1 || !ok2 {
		return errors.New("ufrag and pwd must be strings")
	}
	if p.started {
		if cu, cp, err := p.agent.GetRemoteUserCredentials(); err == nil && (cu != u || cp != w) {
			logf("ignoring new remote credentials (an ICE restart, which this peer does not do)")
		}
		return nil
	}
	p.started = true
	p.remoteCredsAt = at
	go func() {
		// Dial (controlling) and Accept (controlled) block until a pair is selected.
		var conn *ice.Conn
		var err error
		if p.args.role == "controlling" {
			conn, err = p.agent.Dial(context.Background(), u, w)
		} else {
			conn, err = p.agent.Accept(context.Background(), u, w)
		}
		p.connectedCh <- connectResult{conn, err}
	}()
	return nil
}

// addCandidate hands a remote candidate to pion; true when pion took it.
func (p *peer) addCandidate(v interface{}) (bool, error) {
	text, ok := v.(string)
	if !ok {
		return false, errors.New("a candidate must be a string")
	}
	c, err := parseRemote(text)
	if err != nil {
		logf("ignoring unparsable remote candidate %q: %v", text, err)
		return false, nil
	}
	if c.Component() != component {
		logf("ignoring remote candidate for another component: %s", text)
		return false, nil
	}
	// pion skips these itself (mDNS is off here; an active TCP candidate is never dialled).
	if strings.HasSuffix(c.Address(), ".local") || c.TCPType() == ice.TCPTypeActive {
		logf("ignoring remote candidate pion cannot use here: %s", text)
		return false, nil
	}
	if err := p.agent.AddRemoteCandidate(c); err != nil {
		logf("remote candidate %q refused: %v", text, err)
		return false, nil
	}
	return true, nil
}

// waitRemoteCandidates waits (briefly) until pion's task loop holds n remote candidates.
func (p *peer) waitRemoteCandidates(n int) {
	deadline := time.Now().Add(250 * time.Millisecond)
	for len(p.agent.GetRemoteCandidatesStats()) < n {
		if time.Now().After(deadline) {
			logf("pion holds fewer remote candidates than given (%d); starting the checks anyway", n)
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func (p *peer) handleLine(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	var m message
	if err := json.Unmarshal([]byte(line), &m); err != nil || m == nil {
		logf("ignoring malformed line: %.200s", line)
		return
	}
	kind, _ := m["type"].(string)
	arrived := time.Now()
	var err error
	switch kind {
	case "description":
		cands, ok := m["candidates"].([]interface{})
		if !ok {
			err = errors.New("candidates must be an array")
			break
		}
		// The candidates first, then the checks: AddRemoteCandidate hands each one to
		// pion's task loop from a goroutine of its own, so a check from the peer that
		// arrived once Dial/Accept has started but before its candidate is in would be
		// taken for a peer-reflexive candidate of the same address. pion then credits
		// every answer to that one and waits PrflxAcceptanceMinWait (1 s) to nominate.
		added := 0
		for _, c := range cands {
			var ok bool
			if ok, err = p.addCandidate(c); err != nil {
				break
			}
			if ok {
				added++
			}
		}
		if err != nil {
			break
		}
		p.waitRemoteCandidates(added)
		err = p.setCredentials(m["ufrag"], m["pwd"], arrived)
	case "credentials":
		err = p.setCredentials(m["ufrag"], m["pwd"], arrived)
	case "candidate":
		_, err = p.addCandidate(m["candidate"])
	case "end-of-candidates":
		// pion/ice v2 has no API for the peer's end-of-candidates.
	default:
		// the remote's connected/done/error and anything unknown
	}
	if err != nil {
		logf("ignoring malformed %s message: %v", kind, err)
	}
}

func (p *peer) onConnected(conn *ice.Conn) {
	p.connected = true
	p.conn = conn
	ms := time.Since(p.remoteCredsAt).Milliseconds()
	pair, err := p.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		p.finish(1, fmt.Sprintf("connected without a selected pair (%v)", err))
	}
	logf("selected pair %s <-> %s", describe(pair.Local), describe(pair.Remote))
	emit(message{"type": "connected", "ms": ms, "local": describe(pair.Local), "remote": describe(pair.Remote)})
	if p.args.role == "controlled" {
		p.workDone = true
		go p.echo()
	} else {
		go p.readEchoes()
		go p.sendData()
	}
}

// echo (controlled side) sends every datagram straight back over the selected pair.
func (p *peer) echo() {
	buf := make([]byte, 65536)
	relayed := 0
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return // the agent is closing
		}
		if _, err := p.conn.Write(buf[:n]); err != nil {
			logf("echo failed: %v", err)
		}
		if relayed++; relayed%100 == 0 {
			logf("echoed %d", relayed)
		}
	}
}

// readEchoes (controlling side) hands the sequence number of every echo to sendData.
func (p *peer) readEchoes() {
	buf := make([]byte, 65536)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		if n < header || buf[0] != 0x80 {
			continue
		}
		select {
		case p.echoes <- binary.BigEndian.Uint32(buf[1:header]):
		case <-p.dataOver:
			return
		}
	}
}

// sendData (controlling side) runs the data phase: at most --window datagrams in
// flight (one until the first echo, as ours does: the controlled side may not have
// a pair to send on yet), each lost after lossTimeout without an echo.
func (p *peer) sendData() {
	a := p.args
	inFlight := map[uint32]time.Time{}
	var order []uint32 // send order, so that the oldest is first
	next, echoed, lost := 0, 0, 0
	var firstSend, lastEcho time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		window := a.window
		if echoed == 0 {
			window = 1
		}
		for next < a.count && len(inFlight) < window {
			buf := make([]byte, a.size)
			buf[0] = 0x80 // RFC 7983: RTP-like, never STUN
			binary.BigEndian.PutUint32(buf[1:], uint32(next))
			now := time.Now()
			if firstSend.IsZero() {
				firstSend = now
			}
			// A failed send is simply a datagram that will not be echoed.
			if _, err := p.conn.Write(buf); err != nil && a.verbose {
				logf("send %d failed: %v", next, err)
			}
			inFlight[uint32(next)] = now
			order = append(order, uint32(next))
			next++
		}
		if echoed+lost == a.count {
			close(p.dataOver)
			ms := int64(0)
			if !lastEcho.IsZero() {
				ms = lastEcho.Sub(firstSend).Milliseconds()
			}
			logf("data phase over: %d/%d echoed, %d lost", echoed, a.count, lost)
			p.doneCh <- message{"type": "done", "sent": next, "echoed": echoed, "ms": ms}
			return
		}
		// One timer, due when the oldest datagram in flight expires.
		for len(order) > 0 {
			if _, ok := inFlight[order[0]]; ok {
				break
			}
			order = order[1:]
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(inFlight[order[0]].Add(lossTimeout)))
		select {
		case seq := <-p.echoes:
			if _, ok := inFlight[seq]; ok { // else a duplicate, or already counted as lost
				delete(inFlight, seq)
				echoed++
				lastEcho = time.Now()
			}
		case <-timer.C:
			now := time.Now()
			for len(order) > 0 {
				sentAt, ok := inFlight[order[0]]
				if ok && now.Sub(sentAt) < lossTimeout {
					break
				}
				if ok {
					delete(inFlight, order[0])
					lost++
				}
				order = order[1:]
			}
		}
	}
}

func main() {
	a, err := parseArgs(os.Args[1:])
	if err == errHelp {
		fmt.Print(usage)
		os.Exit(0)
	}
	if err != nil {
		emit(message{"type": "error", "message": err.Error()})
		fmt.Fprintf(os.Stderr, "pion-peer: %s\n%s", err, usage)
		os.Exit(2)
	}
	logPrefix = fmt.Sprintf("pion-peer[%s]:", a.role)

	p := &peer{
		args:        a,
		connectedCh: make(chan connectResult, 1),
		failedCh:    make(chan struct{}, 1),
		doneCh:      make(chan message, 1),
		echoes:      make(chan uint32, 1024),
		dataOver:    make(chan struct{}),
	}
	if p.agent, err = newAgent(a); err != nil {
		p.finish(1, fmt.Sprintf("cannot create the pion agent: %v", err))
	}

	// ---- gathering (pion calls OnCandidate in order, nil at the end)
	var local []string
	gatheredCh := make(chan int, 1)
	if err := p.agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			if a.trickle {
				emit(message{"type": "end-of-candidates"})
			}
			gatheredCh <- len(local)
			return
		}
		if c.Component() != component {
			return
		}
		local = append(local, describe(c))
		if a.trickle {
			emit(message{"type": "candidate", "candidate": describe(c)})
		}
	}); err != nil {
		p.finish(1, err.Error())
	}
	if err := p.agent.OnConnectionStateChange(func(s ice.ConnectionState) {
		logf("connection state %s", s)
		if s == ice.ConnectionStateFailed {
			select {
			case p.failedCh <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		p.finish(1, err.Error())
	}

	// ---- signalling input
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
		if err := sc.Err(); err != nil {
			logf("stdin: %v", err)
		}
		close(lines)
	}()

	if a.trickle {
		ufrag, pwd, err := p.agent.GetLocalUserCredentials()
		if err != nil {
			p.finish(1, err.Error())
		}
		emit(message{"type": "credentials", "ufrag": ufrag, "pwd": pwd})
	}
	if err := p.agent.GatherCandidates(); err != nil {
		p.finish(1, fmt.Sprintf("gathering failed: %v", err))
	}
	connectTimer := time.NewTimer(a.timeout)

	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if p.workDone {
					logf("stdin closed; bye")
					p.finish(0, "")
				}
				what := "connecting"
				if p.connected {
					what = "the data phase finished"
				}
				p.finish(1, "stdin closed before "+what)
			}
			p.handleLine(line)
		case n := <-gatheredCh:
			if n == 0 {
				where := ""
				if a.host != "" {
					where = " on " + a.host
				}
				p.finish(1, "no local candidate could be gathered"+where)
			}
			if !a.trickle {
				ufrag, pwd, err := p.agent.GetLocalUserCredentials()
				if err != nil {
					p.finish(1, err.Error())
				}
				emit(message{"type": "description", "ufrag": ufrag, "pwd": pwd, "candidates": local})
			}
		case r := <-p.connectedCh:
			if r.err != nil {
				p.finish(1, fmt.Sprintf("ICE failed: %v", r.err))
			}
			connectTimer.Stop()
			p.onConnected(r.conn)
		case <-p.failedCh:
			if !p.connected {
				p.finish(1, "ICE failed")
			}
		case <-connectTimer.C:
			if !p.connected {
				p.finish(1, fmt.Sprintf("not connected after %g s", a.timeout.Seconds()))
			}
		case done := <-p.doneCh:
			p.workDone = true
			emit(done)
		}
	}
}
