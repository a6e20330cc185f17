// Package memtrim gives back memory that a kubesvc process touched at start-up
// and does not use while it serves: the heap freed since, and the pages of the
// executable (a binary that holds every kubesvc component) that package
// initialisation and start-up read once. The DNS server (kubesvc dns) trims
// once its informers have synced, the service proxy (kubesvc proxy) after its
// first full sync; the node agent (kubesvc agent) when it has been idle. From
// their first trim on, the executable's pages come back without the kernel's
// fault-around (NoFaultAround): only the pages the process touches are mapped.
package memtrim
