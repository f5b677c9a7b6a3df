#!/usr/bin/env python3
"""libnice reference peer for interop tests; speaks /work/shared/peer-protocol.md.

Run with the system interpreter, which has PyGObject and the libnice typelib:
    /usr/bin/python3 spec/interop/libnice-peer.py --role controlling --host 127.0.0.1

JSON lines on stdin/stdout are the signalling channel; diagnostics go to stderr.
Everything runs on one GLib main loop (stdin watch, libnice, timers).
"""
import argparse
import ctypes
import json
import os
import socket
import struct
import sys
import time

try:
    import gi
except ImportError:
    # `env python3` may find a pyenv/venv interpreter without PyGObject; the
    # Debian packages (python3-gi, gir1.2-nice-0.1) live under the system one.
    if sys.executable != '/usr/bin/python3' and os.path.exists('/usr/bin/python3'):
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)
    raise

gi.require_version('Nice', '0.1')
from gi.repository import GLib, Nice  # noqa: E402

# nice_agent_attach_recv() is not introspectable, and Nice.Agent.send() takes
# its buffer as a UTF-8 *string* (it would mangle the 0x80 marker byte), so
# both go through ctypes against the same libnice the typelib wraps. Without
# attach_recv libnice never polls its sockets on our main context at all.
_libnice = ctypes.CDLL('libnice.so.10')
_libglib = ctypes.CDLL('libglib-2.0.so.0')
RECV_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                             ctypes.c_uint, ctypes.POINTER(ctypes.c_char), ctypes.c_void_p)
_libnice.nice_agent_attach_recv.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                            ctypes.c_void_p, RECV_FUNC, ctypes.c_void_p]
_libnice.nice_agent_attach_recv.restype = ctypes.c_int
_libnice.nice_agent_send.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_char_p]
_libnice.nice_agent_send.restype = ctypes.c_int
_libglib.g_main_context_default.restype = ctypes.c_void_p

_pyapi = ctypes.pythonapi
_pyapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pyapi.PyCapsule_GetPointer.restype = ctypes.c_void_p


def gobject_pointer(obj):
    """The C NiceAgent* behind a PyGObject wrapper (an unnamed capsule)."""
    return _pyapi.PyCapsule_GetPointer(obj.__gpointer__, None)


COMPONENT = 1
LOSS_TIMEOUT_MS = 500

# The protocol owns stdout. GLib prints debug output (G_MESSAGES_DEBUG) to fd 1,
# so keep a private copy of stdout for the JSON lines and point fd 1 at stderr.
sys.stdout.flush()
_protocol_out = os.fdopen(os.dup(1), 'w', buffering=1)
os.dup2(2, 1)
sys.stdout = _protocol_out


def now_ms():
    return time.monotonic() * 1000.0


def log(*parts):
    print('libnice-peer:', *parts, file=sys.stderr, flush=True)


def host_port(value):
    """'host:port' -> (ip, port); libnice wants numeric IPs, so resolve here."""
    host, _, port = value.rpartition(':')
    return socket.gethostbyname(host.strip('[]')), int(port)


class ArgParser(argparse.ArgumentParser):
    def error(self, message):
        # Usage errors are fatal too, so the relay sees them as protocol errors.
        print(json.dumps({'type': 'error', 'message': message}, separators=(',', ':')), flush=True)
        super().error(message)


def parse_args():
    p = ArgParser(description='libnice ICE peer (line protocol)')
    p.add_argument('--role', choices=['controlling', 'controlled'], required=True)
    p.add_argument('--count', type=int, default=1000)
    p.add_argument('--size', type=int, default=1000)
    p.add_argument('--window', type=int, default=32)
    p.add_argument('--host', help='gather host candidates only on this address')
    p.add_argument('--stun', help='STUN server HOST:PORT')
    p.add_argument('--turn', help='TURN server HOST:PORT (UDP)')
    p.add_argument('--turn-user', default='')
    p.add_argument('--turn-pass', default='')
    p.add_argument('--trickle', action='store_true')
    p.add_argument('--nomination', choices=['regular', 'aggressive'], default='regular')
    p.add_argument('--tcp', action='store_true',
                   help='also gather ICE-TCP host candidates (libnice ice-tcp: active and passive)')
    p.add_argument('--no-udp', dest='no_udp', action='store_true',
                   help='gather no UDP candidates (libnice ice-udp off; with --tcp: TCP only)')
    p.add_argument('--forward', metavar='HOST:PORT',
                   help='controlled side: relay every datagram of the component to the local UDP '
                        'service HOST:PORT and its answers back, instead of echoing')
    p.add_argument('--timeout', type=float, default=30.0,
                   help='seconds to reach "connected" before giving up')
    args = p.parse_args()
    if args.forward is not None:
        if args.role != 'controlled':
            p.error('--forward is only for --role controlled')
        host, _, port = args.forward.rpartition(':')
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            p.error('--forward must be HOST:PORT, got %r' % args.forward)
    if args.size < 5:
        p.error('--size must be at least 5 (marker byte + 4-byte sequence number)')
    if args.no_udp and not args.tcp:
        p.error('--no-udp needs --tcp (libnice refuses ice-udp and ice-tcp both off)')
    return args


class Peer:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.exit_code = 0
        self.stdin_buf = b''
        self.remote_creds_at = None   # ms timestamp: start of the "connected" clock
        self.connected = False
        self.selected = None          # (local, remote) strings of the selected pair
        self.done = args.role == 'controlled'   # controlled has no data phase to finish
        # data phase (controlling side)
        self.next_seq = 0
        self.in_flight = {}          # seq -> GLib timeout source id
        self.echoed = 0
        self.lost = 0
        self.first_send = None
        self.last_echo = None

        # nomination-mode is construct-only, so it can only be chosen through the
        # new_full() option flags (no REGULAR_NOMINATION flag means aggressive).
        opts = Nice.AgentOption.NONE
        if args.nomination == 'regular':
            opts |= Nice.AgentOption.REGULAR_NOMINATION
        if args.trickle:
            opts |= Nice.AgentOption.ICE_TRICKLE
        agent = Nice.Agent.new_full(GLib.MainContext.default(), Nice.Compatibility.RFC5245, opts)
        self.agent = agent
        agent.set_property('controlling-mode', args.role == 'controlling')
        agent.set_property('ice-trickle', args.trickle)
        agent.set_property('upnp', False)       # never go looking for a gateway
        # UDP only by default; --tcp adds libnice's ICE-TCP (RFC 6544), --no-udp drops UDP.
        # ice-tcp is set first: libnice refuses to turn ice-udp off while ice-tcp is off.
        agent.set_property('ice-tcp', args.tcp)
        agent.set_property('ice-udp', not args.no_udp)
        if args.stun:
            ip, port = host_port(args.stun)
            agent.set_property('stun-server', ip)
            agent.set_property('stun-server-port', port)
        if args.host:
            addr = Nice.Address.new()
            if not addr.set_from_string(args.host):
                raise SystemExit(self.fatal('bad --host address %r' % args.host))
            agent.add_local_address(addr)       # any local address disables enumeration

        agent.connect('new-candidate-full', self.on_new_candidate)
        agent.connect('candidate-gathering-done', self.on_gathering_done)
        agent.connect('component-state-changed', self.on_state)
        agent.connect('new-selected-pair-full', self.on_selected_pair)

        self.stream = agent.add_stream(1)
        if args.turn:
            ip, port = host_port(args.turn)
            agent.set_relay_info(self.stream, COMPONENT, ip, port, args.turn_user,
                                 args.turn_pass, Nice.RelayType.UDP)

        # The C callback must stay referenced for the agent's whole life.
        self.agent_ptr = gobject_pointer(agent)
        self.recv_cb = RECV_FUNC(self.on_recv)
        _libnice.nice_agent_attach_recv(self.agent_ptr, self.stream, COMPONENT,
                                        _libglib.g_main_context_default(), self.recv_cb, None)

        # --forward: a UDP socket connected to the service (the kernel then delivers
        # only its answers), bound to loopback when the service is on loopback.
        self.forward_sock = None
        if args.forward is not None:
            ip, port = host_port(args.forward)
            family = socket.AF_INET6 if ':' in ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if ip.startswith('127.') or ip == '::1':
                sock.bind((ip if ip == '::1' else '127.0.0.1', 0))
            sock.connect((ip, port))
            sock.setblocking(False)
            self.forward_sock = sock
            GLib.io_add_watch(sock.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN, self.on_forward_answer)

        GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR,
                          self.on_stdin)
        GLib.timeout_add(int(args.timeout * 1000), self.on_timeout)

        if args.trickle:
            ok, ufrag, pwd = agent.get_local_credentials(self.stream)
            self.emit(type='credentials', ufrag=ufrag, pwd=pwd)
        if not agent.gather_candidates(self.stream):
            raise SystemExit(self.fatal('gather_candidates failed'))

    # ---- output -------------------------------------------------------------
    def emit(self, **msg):
        sys.stdout.write(json.dumps(msg, separators=(',', ':')) + '\n')
        sys.stdout.flush()

    def fatal(self, message):
        log('fatal:', message)
        self.emit(type='error', message=message)
        self.exit_code = 1
        self.loop.quit()
        return 1

    def cand_str(self, cand):
        # libnice writes "a=candidate:<foundation> 1 UDP <prio> <ip> <port> typ host";
        # the protocol wants the attribute without "a=".
        sdp = self.agent.generate_local_candidate_sdp(cand)
        return sdp[2:] if sdp.startswith('a=') else sdp

    # ---- gathering ----------------------------------------------------------
    def on_new_candidate(self, agent, cand):
        if self.args.trickle:
            self.emit(type='candidate', candidate=self.cand_str(cand))

    def on_gathering_done(self, agent, stream_id):
        if self.args.trickle:
            self.emit(type='end-of-candidates')
            return
        ok, ufrag, pwd = agent.get_local_credentials(self.stream)
        cands = [self.cand_str(c) for c in agent.get_local_candidates(self.stream, COMPONENT)]
        self.emit(type='description', ufrag=ufrag, pwd=pwd, candidates=cands)

    # ---- signalling input ---------------------------------------------------
    def on_stdin(self, fd, condition):
        try:
            chunk = os.read(0, 65536)
        except OSError as e:
            chunk = b''
            log('stdin read failed:', e)
        if not chunk:
            self.on_eof()
            return False
        self.stdin_buf += chunk
        *lines, self.stdin_buf = self.stdin_buf.split(b'\n')
        for line in lines:
            if line.strip():
                self.handle_line(line)
        return True

    def handle_line(self, line):
        try:
            msg = json.loads(line)
        except ValueError:
            log('ignoring non-JSON line:', line[:200])
            return
        kind = msg.get('type') if isinstance(msg, dict) else None
        try:
            if kind in ('description', 'credentials'):
                self.set_credentials(msg['ufrag'], msg['pwd'])
                for c in msg.get('candidates', []):
                    self.add_remote_candidate(c)
            elif kind == 'candidate':
                self.add_remote_candidate(msg['candidate'])
            elif kind == 'end-of-candidates':
                self.agent.peer_candidate_gathering_done(self.stream)
            # anything else (including the remote's connected/done/error) is ignored
        except (KeyError, TypeError, AttributeError) as e:
            log('ignoring malformed %s message: %r' % (kind, e))

    def set_credentials(self, ufrag, pwd):
        if self.remote_creds_at is None:
            self.remote_creds_at = now_ms()
        if not self.agent.set_remote_credentials(self.stream, ufrag, pwd):
            self.fatal('set_remote_credentials failed')

    def add_remote_candidate(self, text):
        # parse_remote_candidate_sdp only accepts the full "a=candidate:" line.
        sdp = text if text.startswith('a=') else 'a=' + text
        # Read the component from the text: GI's view of NiceCandidate fields after
        # `addr` is misaligned in 0.1.21 (component_id reads 0), so don't trust it.
        fields = sdp.split()
        if len(fields) >= 2 and fields[1] != str(COMPONENT):
            log('skipping candidate for another component:', text)
            return
        cand = self.agent.parse_remote_candidate_sdp(self.stream, sdp)
        if cand is None:
            log('libnice could not parse candidate:', text)
            return
        if self.agent.set_remote_candidates(self.stream, COMPONENT, [cand]) < 1:
            log('libnice rejected candidate:', text)

    def on_eof(self):
        # The relay closes stdin once the run is over; before that it means failure.
        if self.exit_code == 0 and not (self.connected and self.done):
            self.fatal('stdin closed before %s' % ('connecting' if not self.connected
                                                   else 'the data phase finished'))
        self.loop.quit()

    def on_timeout(self):
        if not self.connected:
            self.fatal('not connected after %g s' % self.args.timeout)
        return False

    # ---- connectivity -------------------------------------------------------
    def on_state(self, agent, stream_id, component_id, state):
        log('component state', Nice.component_state_to_string(state))
        if state == Nice.ComponentState.FAILED and not self.connected:
            self.fatal('ICE failed')
        else:
            self.maybe_connected()

    def on_selected_pair(self, agent, stream_id, component_id, local, remote):
        # Keep the pair from the signal: get_selected_pair()'s out-parameters are
        # mis-annotated as in-parameters in the typelib and come back empty.
        self.selected = (self.cand_str(local), self.cand_str(remote))
        log('selected pair', self.selected[0], '<->', self.selected[1])
        self.maybe_connected()

    def maybe_connected(self):
        # Report once: the selected pair must exist *and* the component must be
        # connected/ready (libnice can emit either signal first).
        if self.connected:
            return
        state = self.agent.get_component_state(self.stream, COMPONENT)
        if state not in (Nice.ComponentState.CONNECTED, Nice.ComponentState.READY):
            return
        if self.selected is None:
            return
        self.connected = True
        start = self.remote_creds_at if self.remote_creds_at is not None else now_ms()
        self.emit(type='connected', ms=round(now_ms() - start),
                  local=self.selected[0], remote=self.selected[1])
        if self.args.role == 'controlling':
            self.pump()

    # ---- data phase ---------------------------------------------------------
    def send(self, data):
        return _libnice.nice_agent_send(self.agent_ptr, self.stream, COMPONENT, len(data), data)

    def on_recv(self, agent_ptr, stream_id, component_id, length, buf, user_data):
        data = ctypes.string_at(buf, length)
        if self.args.role == 'controlled':
            if self.forward_sock is not None:
                try:
                    self.forward_sock.send(data)   # to the local service; its answer comes back in on_forward_answer
                except OSError as e:               # ICMP port unreachable while the service is down
                    log('--forward send failed:', e)
            else:
                self.send(data)           # echo straight back over the selected pair
            return
        if length < 5 or data[0] != 0x80:
            return
        seq = struct.unpack('>I', data[1:5])[0]
        source = self.in_flight.pop(seq, None)
        if source is None:
            return                    # duplicate, or already counted as lost
        GLib.source_remove(source)
        self.echoed += 1
        self.last_echo = now_ms()
        self.pump()

    def on_forward_answer(self, fd, condition):
        """--forward: relay everything the service sends back over the selected pair."""
        while True:
            try:
                data = self.forward_sock.recv(65535)
            except BlockingIOError:
                break
            except OSError as e:
                log('--forward receive failed:', e)
                break
            self.send(data)
        return True

    def on_loss(self, seq):
        if self.in_flight.pop(seq, None) is not None:
            self.lost += 1
            self.pump()
        return False

    def pump(self):
        """Keep up to --window datagrams in flight; write `done` when all settled."""
        args = self.args
        padding = b'\0' * (args.size - 5)
        while self.next_seq < args.count and len(self.in_flight) < args.window:
            seq = self.next_seq
            self.next_seq += 1
            if self.first_send is None:
                self.first_send = now_ms()
            # A failed send (-1) is just a datagram that will never be echoed.
            self.send(b'\x80' + struct.pack('>I', seq) + padding)
            self.in_flight[seq] = GLib.timeout_add(LOSS_TIMEOUT_MS, self.on_loss, seq)
        if not self.done and self.echoed + self.lost == args.count:
            self.done = True
            span = (self.last_echo - self.first_send) if self.last_echo else 0
            self.emit(type='done', sent=args.count, echoed=self.echoed, ms=round(span))

    def run(self):
        self.loop.run()
        return self.exit_code


def main():
    args = parse_args()
    try:
        peer = Peer(args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except Exception as e:  # bad --stun/--turn host and the like
        log('fatal:', repr(e))
        print(json.dumps({'type': 'error', 'message': str(e)}, separators=(',', ':')), flush=True)
        return 1
    code = peer.run()
    if code == 0:
        log('bye')
    return code


if __name__ == '__main__':
    sys.exit(main())
