package iptables

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// assemble returns the sync's iptables-restore input: the filter table's
// chains, then the nat table's fixed and shared chains and the
// per-ServicePort chains w holds, then, on a full sync, the mangle canary.
// Every chain is declared before any rule, and stale chains are deleted after
// every rule, when nothing refers to them any more. A full sync writes every
// chain; a partial one writes a shared chain only when a changed ServicePort
// altered its rules there (w.dirty), leaves the fixed chains alone (nothing
// in them depends on Services), and leaves a table out when it has nothing
// to change in it.
func (b *Backend) assemble(w *restoreWriter, full bool, saved map[Table]*savedTable, nodeIPs []netip.Addr) []byte {
	order := b.sortedServices()
	write := func(d dispatchChain) bool { return full || w.dirty[d] }

	// filter
	var fChains, fRules lineBuffer
	var fDeleted []string
	if full {
		for _, c := range []string{kubeNodePortsChain, kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeProxyFirewallChain} {
			fChains.chain(c)
		}
		if b.nodePorts.localhost {
			fChains.chain(kubeletFirewallChain)
		}
		fChains.chain(kubeProxyCanaryChain)
		b.writeJumps(&fRules, TableFilter, saved[TableFilter])
		if st := saved[TableFilter]; !b.nodePorts.localhost && st.chains[kubeletFirewallChain] {
			// Localhost NodePorts were on in an earlier run: take the guard away.
			b.writeUnlinks(&fRules, st, kubeletFirewallChain)
			fChains.chain(kubeletFirewallChain)
			fDeleted = append(fDeleted, kubeletFirewallChain)
		}
		b.writeLocalnetGuard(&fRules)
	}
	for _, d := range []dispatchChain{filterServices, filterExternalServices, filterNodePorts, filterProxyFirewall} {
		if !write(d) {
			continue
		}
		if !full {
			fChains.chain(dispatchChains[d].chain)
		}
		b.writeDispatch(&fRules, order, d)
		if d == filterServices {
			b.writeServiceCIDRDrops(&fRules)
		}
	}
	if full {
		b.writeForward(&fRules)
	}

	// nat: the fixed and shared chains; the per-ServicePort ones are in w.
	var nChains, nRules lineBuffer
	if full {
		for _, c := range []string{kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain, kubeProxyCanaryChain} {
			nChains.chain(c)
		}
		b.writeJumps(&nRules, TableNAT, saved[TableNAT])
		b.writeMasquerade(&nRules)
	}
	if write(natServices) {
		if !full {
			nChains.chain(kubeServicesChain)
		}
		b.writeDispatch(&nRules, order, natServices)
		b.writeNodePortsJump(&nRules, nodeIPs)
	}
	if write(natNodePorts) {
		if !full {
			nChains.chain(kubeNodePortsChain)
		}
		b.writeDispatch(&nRules, order, natNodePorts)
	}

	var out bytes.Buffer
	out.Grow(fChains.Len() + fRules.Len() + nChains.Len() + w.natChains.Len() + nRules.Len() + w.natRules.Len() +
		32*(len(fDeleted)+len(w.deleted)) + 256)
	if full || fChains.lines > 0 {
		writeSection(&out, TableFilter, fDeleted, fChains.Bytes(), fRules.Bytes())
	}
	if full || nChains.lines > 0 || w.natChains.lines > 0 || len(w.deleted) > 0 {
		var dChains lineBuffer
		for _, c := range w.deleted {
			dChains.chain(c)
		}
		writeSection(&out, TableNAT, w.deleted, nChains.Bytes(), w.natChains.Bytes(), dChains.Bytes(), nRules.Bytes(), w.natRules.Bytes())
	}
	if full {
		var mangle lineBuffer
		mangle.chain(kubeProxyCanaryChain)
		writeSection(&out, TableMangle, nil, mangle.Bytes())
	}
	return out.Bytes()
}

// writeSection writes one table's section: parts (declarations, then rules),
// the deletions, COMMIT.
func writeSection(out *bytes.Buffer, table Table, deleted []string, parts ...[]byte) {
	out.WriteString("*" + string(table) + "\n")
	for _, p := range parts {
		out.Write(p)
	}
	for _, c := range deleted {
		out.WriteString("-X " + c + "\n")
	}
	out.WriteString("COMMIT\n")
}

// writeDispatch writes every ServicePort's rules for one shared chain.
func (b *Backend) writeDispatch(r *lineBuffer, order []proxy.ServicePortName, d dispatchChain) {
	for _, name := range order {
		if rr := b.services[name].dispatch[d]; rr.lines > 0 {
			r.appendLines(rr.text, rr.lines)
		}
	}
}

// writeJumps inserts, at the top of the built-in chains, the jumps to ours
// that saved (the table before this sync) lacks. They go in through the
// restore, not `iptables -I`, so that a sync stays one iptables-restore run;
// --noflush leaves the rest of the built-in chains alone.
func (b *Backend) writeJumps(r *lineBuffer, table Table, saved *savedTable) {
	jumps := jumpRules
	if b.nodePorts.localhost {
		jumps = append(slices.Clone(jumpRules), localnetJumpRules...)
	}
	for _, j := range jumps {
		if j.table != table || saved.hasRule(j.src, j.spec()) {
			continue
		}
		r.line(append([]string{"-I", j.src}, j.spec()...)...)
	}
}

// writeUnlinks deletes the rules of chains not ours (the built-in ones) that
// jump to chain.
func (b *Backend) writeUnlinks(r *lineBuffer, saved *savedTable, chain string) {
	for _, rule := range saved.rules {
		if rule.target() == chain {
			r.line(append([]string{"-D", rule.chain}, rule.args...)...)
		}
	}
}

// writeMasquerade writes KUBE-MARK-MASQ (set the mark) and KUBE-POSTROUTING
// (masquerade marked packets, clearing the mark first so that a packet that
// goes through the stack again is not masqueraded twice).
func (b *Backend) writeMasquerade(r *lineBuffer) {
	r.rule(kubePostroutingChain, "-m", "mark", "!", "--mark", b.masqMark+"/"+b.masqMark, "-j", "RETURN")
	r.rule(kubePostroutingChain, "-j", "MARK", "--xor-mark", b.masqMark)
	r.rule(kubePostroutingChain, "-m", "comment", "--comment", "kubernetes service traffic requiring SNAT",
		"-j", "MASQUERADE", "--random-fully")
	b.writeMarkMasq(r)
}

// writeMarkMasq writes KUBE-MARK-MASQ's one rule.
func (b *Backend) writeMarkMasq(r *lineBuffer) {
	r.rule(kubeMarkMasqChain, "-j", "MARK", "--or-mark", b.masqMark)
}

// writeLocalnetGuard is kube-proxy's (and kubelet's) defence for
// route_localnet (CVE-2020-8558, https://issue.k8s.io/90259): with it set, the
// kernel would accept packets for 127.0.0.0/8 from other hosts; drop those not
// from loopback that are not replies of a DNATed connection (a localhost
// NodePort's replies come back to the masquerade address and are de-NATed to
// 127.0.0.1).
func (b *Backend) writeLocalnetGuard(r *lineBuffer) {
	if !b.nodePorts.localhost {
		return
	}
	r.rule(kubeletFirewallChain, "-m", "comment", "--comment", "block incoming localnet connections",
		"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
}

// writeServiceCIDRDrops ends filter KUBE-SERVICES (which sees new connections
// after DNAT, from OUTPUT and FORWARD) with a drop of what is still addressed
// to a Service CIDR: an address no Service has, or a port its ClusterIP does
// not have. kube-proxy's nftables mode does this; its iptables mode lets such
// packets wander off by the default route.
func (b *Backend) writeServiceCIDRDrops(r *lineBuffer) {
	for _, p := range b.serviceCIDR {
		r.rule(kubeServicesChain, "-m", "comment", "--comment", "drop traffic to unallocated Service IPs",
			"-d", p.String(), "-j", "DROP")
	}
}

// writeForward writes KUBE-FORWARD: drop conntrack-INVALID packets (which
// would otherwise reset connections, https://issue.k8s.io/74839), accept
// marked Service traffic and its replies even when FORWARD's policy is DROP.
func (b *Backend) writeForward(r *lineBuffer) {
	r.rule(kubeForwardChain, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	r.rule(kubeForwardChain, "-m", "comment", "--comment", "kubernetes forwarding rules",
		"-m", "mark", "--mark", b.masqMark+"/"+b.masqMark, "-j", "ACCEPT")
	r.rule(kubeForwardChain, "-m", "comment", "--comment", "kubernetes forwarding conntrack rule",
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
}

// nodePortsComment is kube-proxy's comment on the jumps to KUBE-NODEPORTS.
const nodePortsComment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"

// writeNodePortsJump ends nat KUBE-SERVICES with the jump to KUBE-NODEPORTS
// for the addresses that accept NodePorts: every local one (without loopback
// unless localhost NodePorts are on), or the node's addresses ("primary") and
// the local addresses in the configured CIDRs. Unlike kube-proxy, which lists
// the matching interface addresses it saw at the sync, a CIDR is matched with
// addrtype LOCAL, so addresses added later work at once.
func (b *Backend) writeNodePortsJump(r *lineBuffer, nodeIPs []netip.Addr) {
	npa := b.nodePorts
	if !npa.enabled {
		return
	}
	comment := []string{"-m", "comment", "--comment", nodePortsComment}
	jump := []string{"-j", kubeNodePortsChain}
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
	if npa.matchAll {
		args := slices.Concat(comment, local)
		if !npa.localhost {
			args = append(args, "!", "-d", b.loopback().String())
		}
		r.rule(kubeServicesChain, append(args, jump...)...)
		return
	}
	if npa.guardLoopback {
		r.rule(kubeServicesChain, "-m", "comment", "--comment", "no nodeports on loopback addresses",
			"-d", b.loopback().String(), "-j", "RETURN")
	}
	if npa.primary {
		for _, ip := range nodeIPs {
			if ip.IsLoopback() || slices.ContainsFunc(npa.cidrs, func(p netip.Prefix) bool { return p.Contains(ip) }) {
				continue
			}
			r.rule(kubeServicesChain, slices.Concat(comment, []string{"-d", ip.String()}, jump)...)
		}
		if npa.localhost {
			r.rule(kubeServicesChain, slices.Concat(comment, []string{"-d", loopbackV4.String()}, jump)...)
		}
	}
	for _, p := range npa.cidrs {
		r.rule(kubeServicesChain, slices.Concat(comment, []string{"-d", p.String()}, local, jump)...)
	}
}

// Cleanup removes, in the filter, nat and mangle tables, every chain the
// Backend creates (the fixed KUBE-* chains and every KUBE-SVC/SVL/EXT/FW/SEP
// chain, whoever wrote them) and the rules elsewhere that jump to them, in one
// iptables-restore run. Nothing to remove is not an error; neither is a
// missing table. route_localnet is left as it is. The next Sync is a full one.
//
// With a Batcher and more than cleanupBatchChains per-ServicePort chains,
// those are flushed and then deleted in restores of cleanupBatchChains each,
// between a first restore that unhooks and flushes everything else and a last
// one that deletes the rest of the nat chains (see "Batched restores" in
// README.md: one restore would cost chains², minutes at 10,000 Services).
func (b *Backend) Cleanup(ctx context.Context) error {
	b.needFull = true
	tables := []Table{TableFilter, TableNAT, TableMangle}
	saved, err := b.save(ctx, tables...)
	if err != nil {
		return fmt.Errorf("iptables cleanup: %w", err)
	}
	var batched []string // nat per-ServicePort chains removed in batches
	if b.batchSize() > 0 {
		for c := range saved[TableNAT].chains {
			if isServiceChainName(c) {
				batched = append(batched, c)
			}
		}
		if len(batched) <= cleanupBatchChains {
			batched = nil
		}
		slices.Sort(batched)
	}
	var out, lastNAT bytes.Buffer
	for _, t := range tables {
		st := saved[t]
		var owned []string
		for c := range st.chains {
			if isOwnedChain(t, c) {
				owned = append(owned, c)
			}
		}
		if len(owned) == 0 {
			continue
		}
		slices.Sort(owned)
		var chains, rules lineBuffer
		for _, c := range owned {
			chains.chain(c)
		}
		for _, rule := range st.rules {
			if slices.Contains(owned, rule.target()) {
				rules.line(append([]string{"-D", rule.chain}, rule.args...)...)
			}
		}
		if t == TableNAT && batched != nil {
			// Flush the fixed chains now (and with them the jumps to the
			// ServicePorts' chains); delete them after the batches.
			var fixed []string
			chains.Reset()
			for _, c := range owned {
				if !isServiceChainName(c) {
					chains.chain(c)
					fixed = append(fixed, c)
				}
			}
			writeSection(&out, t, nil, chains.Bytes(), rules.Bytes())
			writeSection(&lastNAT, t, fixed)
			continue
		}
		writeSection(&out, t, owned, chains.Bytes(), rules.Bytes())
	}
	if out.Len() == 0 {
		return nil
	}
	if err := b.exec.Restore(ctx, out.Bytes()); err != nil {
		return fmt.Errorf("iptables cleanup (%s): %w", b.family, err)
	}
	if batched != nil {
		// Flushed first, all of them, so that no chain of a later batch still
		// jumps to one being deleted.
		for _, del := range []bool{false, true} {
			for chunk := range slices.Chunk(batched, cleanupBatchChains) {
				out.Reset()
				if del {
					writeSection(&out, TableNAT, chunk)
				} else {
					var chains lineBuffer
					for _, c := range chunk {
						chains.chain(c)
					}
					writeSection(&out, TableNAT, nil, chains.Bytes())
				}
				if err := b.exec.Restore(ctx, out.Bytes()); err != nil {
					return fmt.Errorf("iptables cleanup (%s), %d chains: %w", b.family, len(chunk), err)
				}
			}
		}
		if err := b.exec.Restore(ctx, lastNAT.Bytes()); err != nil {
			return fmt.Errorf("iptables cleanup (%s): %w", b.family, err)
		}
	}
	clear(b.services)
	b.order = nil
	return nil
}

// cleanupBatchChains is the number of chains per restore of a batched
// Cleanup.
const cleanupBatchChains = 1000
