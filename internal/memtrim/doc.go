// Package memtrim gives back memory that a kubesvc process touched at start-up
// and does not use while it serves: the heap freed since, and the pages of the
// executable (a binary that holds every kubesvc component) that package
// initialisation and start-up read once. The DNS server (kubesvc dns) trims
// once its informers have synced; the node agent (kubesvc agent) when it has
// been idle.
package memtrim
