package socklb

import "golang.org/x/sys/unix"

// Offsets in struct bpf_sock_addr, the programs' context.
const (
	ctxUserIP4  = 4
	ctxUserPort = 24
	ctxProtocol = 36
)

// Map names, as the programs refer to them.
const (
	mapServices = "services"
	mapBackends = "backends"
	mapRevNAT   = "revnat"
)

// Stack slots of the connect program (offsets from r10, the frame pointer).
const (
	stSvcKey    = -8  // services key: IP (4) and port (4)
	stBackKey   = -16 // backends key: service id (4) and index (4)
	stRevValue  = -32 // revnat value: Service IP, port, backend IP, port
	stRevCookie = -40 // revnat key: the socket's cookie
)

// connectProgram runs in connect() on an IPv4 socket of a process in the
// cgroup. A TCP connection to a Service's ClusterIP and port that has
// endpoints goes to one of them, chosen at random, as the proxy's DNAT rule
// would: the socket connects straight to the endpoint, so its packets meet
// no NAT. The Service's address is kept by the socket's cookie for
// getpeername. Anything else — not TCP, not a known Service port, a Service
// the proxy left to the rules — passes unchanged, to the proxy's rules.
func connectProgram() []insn {
	return []insn{
		movReg(r6, r1),
		loadW(r2, r6, ctxProtocol),
		jneImm(r2, unix.IPPROTO_TCP, "out"),
		loadW(r2, r6, ctxUserIP4),
		storeW(r10, r2, stSvcKey),
		loadW(r2, r6, ctxUserPort),
		storeW(r10, r2, stSvcKey+4),
		loadMap(r1, mapServices),
		movReg(r2, r10),
		addImm(r2, stSvcKey),
		call(fnMapLookupElem),
		jeqImm(r0, 0, "out"),
		loadW(r7, r0, 0), // the number of endpoints
		loadW(r8, r0, 4), // the id of their list
		jeqImm(r7, 0, "out"),
		call(fnGetPrandomU32),
		mod32Reg(r0, r7),
		storeW(r10, r8, stBackKey),
		storeW(r10, r0, stBackKey+4),
		loadMap(r1, mapBackends),
		movReg(r2, r10),
		addImm(r2, stBackKey),
		call(fnMapLookupElem),
		jeqImm(r0, 0, "out"),
		loadW(r7, r0, 0), // the endpoint's IP
		loadW(r8, r0, 4), // and port
		// revnat[cookie] = {Service IP, port, endpoint IP, port}
		loadW(r2, r10, stSvcKey),
		storeW(r10, r2, stRevValue),
		loadW(r2, r10, stSvcKey+4),
		storeW(r10, r2, stRevValue+4),
		storeW(r10, r7, stRevValue+8),
		storeW(r10, r8, stRevValue+12),
		movReg(r1, r6),
		call(fnGetSocketCookie),
		storeDW(r10, r0, stRevCookie),
		loadMap(r1, mapRevNAT),
		movReg(r2, r10),
		addImm(r2, stRevCookie),
		movReg(r3, r10),
		addImm(r3, stRevValue),
		movImm(r4, 0),
		call(fnMapUpdateElem),
		storeW(r6, r7, ctxUserIP4),
		storeW(r6, r8, ctxUserPort),
		label("out"),
		movImm(r0, 1),
		exit(),
	}
}

// getpeernameProgram runs in getpeername() on an IPv4 socket of a process in
// the cgroup: a socket that connectProgram sent to an endpoint, and that is
// still connected to it, shows the Service's address as its peer, as it
// would through the proxy's DNAT.
func getpeernameProgram() []insn {
	return []insn{
		movReg(r6, r1),
		call(fnGetSocketCookie),
		storeDW(r10, r0, -8),
		loadMap(r1, mapRevNAT),
		movReg(r2, r10),
		addImm(r2, -8),
		call(fnMapLookupElem),
		jeqImm(r0, 0, "out"),
		loadW(r2, r0, 8),
		loadW(r3, r6, ctxUserIP4),
		jneReg(r2, r3, "out"),
		loadW(r2, r0, 12),
		loadW(r3, r6, ctxUserPort),
		jneReg(r2, r3, "out"),
		loadW(r2, r0, 0),
		storeW(r6, r2, ctxUserIP4),
		loadW(r2, r0, 4),
		storeW(r6, r2, ctxUserPort),
		label("out"),
		movImm(r0, 1),
		exit(),
	}
}
