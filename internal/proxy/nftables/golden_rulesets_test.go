package nftables

// Golden rulesets: the whole table after a full sync, as knftables.Fake dumps it.
// Each was reviewed line by line against the semantics in README.md; the
// hashes in chain names are kube-proxy's (its proxier.go cites
// ULMVA6XW-ns1/svc1/tcp/p80 and 5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80).

// baseRulesetV4 is the fixed part of an IPv4 table with the test defaults
// (node 192.168.0.2, nodePortAddresses "primary", localhost NodePorts on).
const baseRulesetV4 = `
add table ip kubesvc { comment "rules for kubesvc's service proxy (kube-proxy nftables layout)" ; }
add chain ip kubesvc cluster-ips-check
add chain ip kubesvc filter-forward { type filter hook forward priority -110 ; }
add chain ip kubesvc filter-input { type filter hook input priority -110 ; }
add chain ip kubesvc filter-output { type filter hook output priority -110 ; }
add chain ip kubesvc filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip kubesvc filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kubesvc firewall-check
add chain ip kubesvc mark-for-masquerade
add chain ip kubesvc masquerading
add chain ip kubesvc nat-output { type nat hook output priority -100 ; }
add chain ip kubesvc nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kubesvc nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kubesvc nodeport-endpoints-check
add chain ip kubesvc reject-chain
add chain ip kubesvc service-endpoints-check
add chain ip kubesvc services
add set ip kubesvc cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kubesvc cluster-ips-masquerade { type ipv4_addr . inet_proto . inet_service ; comment "ClusterIP traffic to masquerade when it comes from outside the cluster" ; }
add set ip kubesvc hairpin-endpoints { type ipv4_addr . ipv4_addr ; comment "endpoint . endpoint: masquerade an endpoint that reached itself" ; }
add set ip kubesvc nodeport-ips { type ipv4_addr ; flags interval ; comment "IPs that accept NodePort traffic" ; }
add map ip kubesvc firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kubesvc no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kubesvc no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kubesvc service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kubesvc service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kubesvc cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kubesvc cluster-ips-check ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kubesvc filter-forward ct state new jump service-endpoints-check
add rule ip kubesvc filter-forward ct state new jump cluster-ips-check
add rule ip kubesvc filter-input ip daddr 127.0.0.0/8 iifname != "lo" ct status & dnat == 0 drop comment "block incoming localnet connections"
add rule ip kubesvc filter-input ct state new jump nodeport-endpoints-check
add rule ip kubesvc filter-input ct state new jump service-endpoints-check
add rule ip kubesvc filter-output ct state new jump service-endpoints-check
add rule ip kubesvc filter-output ct state new jump firewall-check
add rule ip kubesvc filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip kubesvc filter-prerouting ct state new jump firewall-check
add rule ip kubesvc firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kubesvc mark-for-masquerade mark set mark or 0x4000
add rule ip kubesvc masquerading ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade comment "hairpin"
add rule ip kubesvc masquerading mark and 0x4000 == 0 return
add rule ip kubesvc masquerading mark set mark xor 0x4000
add rule ip kubesvc masquerading masquerade fully-random
add rule ip kubesvc nat-output jump services
add rule ip kubesvc nat-output ip daddr 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports comment "localhost NodePorts (route_localnet)"
add rule ip kubesvc nat-postrouting jump masquerading
add rule ip kubesvc nat-prerouting jump services
add rule ip kubesvc nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kubesvc nodeport-endpoints-check ip daddr 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kubesvc reject-chain meta l4proto tcp reject with tcp reset
add rule ip kubesvc reject-chain reject
add rule ip kubesvc service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kubesvc services ip saddr != 10.0.0.0/8 ip daddr . meta l4proto . th dport @cluster-ips-masquerade jump mark-for-masquerade comment "ClusterIP traffic from outside the cluster"
add rule ip kubesvc services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kubesvc services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add element ip kubesvc nodeport-ips { 192.168.0.2 }
`

// baseRulesetV6 is the fixed part of an IPv6 table (node 2001:db8::2).
const baseRulesetV6 = `
add table ip6 kubesvc { comment "rules for kubesvc's service proxy (kube-proxy nftables layout)" ; }
add chain ip6 kubesvc cluster-ips-check
add chain ip6 kubesvc filter-forward { type filter hook forward priority -110 ; }
add chain ip6 kubesvc filter-input { type filter hook input priority -110 ; }
add chain ip6 kubesvc filter-output { type filter hook output priority -110 ; }
add chain ip6 kubesvc filter-output-post-dnat { type filter hook output priority -90 ; }
add chain ip6 kubesvc filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip6 kubesvc firewall-check
add chain ip6 kubesvc mark-for-masquerade
add chain ip6 kubesvc masquerading
add chain ip6 kubesvc nat-output { type nat hook output priority -100 ; }
add chain ip6 kubesvc nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip6 kubesvc nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip6 kubesvc nodeport-endpoints-check
add chain ip6 kubesvc reject-chain
add chain ip6 kubesvc service-endpoints-check
add chain ip6 kubesvc services
add set ip6 kubesvc cluster-ips { type ipv6_addr ; comment "Active ClusterIPs" ; }
add set ip6 kubesvc cluster-ips-masquerade { type ipv6_addr . inet_proto . inet_service ; comment "ClusterIP traffic to masquerade when it comes from outside the cluster" ; }
add set ip6 kubesvc hairpin-endpoints { type ipv6_addr . ipv6_addr ; comment "endpoint . endpoint: masquerade an endpoint that reached itself" ; }
add set ip6 kubesvc nodeport-ips { type ipv6_addr ; flags interval ; comment "IPs that accept NodePort traffic" ; }
add map ip6 kubesvc firewall-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip6 kubesvc no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip6 kubesvc no-endpoint-services { type ipv6_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip6 kubesvc service-ips { type ipv6_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip6 kubesvc service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip6 kubesvc cluster-ips-check ip6 daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip6 kubesvc cluster-ips-check ip6 daddr fd00:30::/108 drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip6 kubesvc filter-forward ct state new jump service-endpoints-check
add rule ip6 kubesvc filter-forward ct state new jump cluster-ips-check
add rule ip6 kubesvc filter-input ct state new jump nodeport-endpoints-check
add rule ip6 kubesvc filter-input ct state new jump service-endpoints-check
add rule ip6 kubesvc filter-output ct state new jump service-endpoints-check
add rule ip6 kubesvc filter-output ct state new jump firewall-check
add rule ip6 kubesvc filter-output-post-dnat ct state new jump cluster-ips-check
add rule ip6 kubesvc filter-prerouting ct state new jump firewall-check
add rule ip6 kubesvc firewall-check ip6 daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip6 kubesvc mark-for-masquerade mark set mark or 0x4000
add rule ip6 kubesvc masquerading ct status dnat ip6 saddr . ip6 daddr @hairpin-endpoints jump mark-for-masquerade comment "hairpin"
add rule ip6 kubesvc masquerading mark and 0x4000 == 0 return
add rule ip6 kubesvc masquerading mark set mark xor 0x4000
add rule ip6 kubesvc masquerading masquerade fully-random
add rule ip6 kubesvc nat-output jump services
add rule ip6 kubesvc nat-postrouting jump masquerading
add rule ip6 kubesvc nat-prerouting jump services
add rule ip6 kubesvc nodeport-endpoints-check ip6 daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip6 kubesvc reject-chain meta l4proto tcp reject with tcp reset
add rule ip6 kubesvc reject-chain reject
add rule ip6 kubesvc service-endpoints-check ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip6 kubesvc services ip6 saddr != fd00:10::/64 ip6 daddr . meta l4proto . th dport @cluster-ips-masquerade jump mark-for-masquerade comment "ClusterIP traffic from outside the cluster"
add rule ip6 kubesvc services ip6 daddr . meta l4proto . th dport vmap @service-ips
add rule ip6 kubesvc services ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add element ip6 kubesvc nodeport-ips { 2001:db8::2 }
`

// goldenWant are the lines each goldenCase adds to its base.
var goldenWant = map[string]string{
	"ClusterIP with two endpoints": `
add chain ip kubesvc service-ULMVA6XW-ns1/svc1/tcp/p80
add map ip kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add element ip kubesvc cluster-ips-masquerade { 172.30.0.41 . tcp . 80 }
add rule ip kubesvc service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip kubesvc cluster-ips { 172.30.0.41 }
add element ip kubesvc hairpin-endpoints { 10.180.0.1 . 10.180.0.1 }
add element ip kubesvc endpoint-buckets-tcp-0 { 0-32767 : 10.180.0.1 . 80 }
add element ip kubesvc endpoint-buckets-tcp-0 { 32768-65535 : 10.180.0.2 . 80 }
add element ip kubesvc service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
`,
	"NodePort": `
add chain ip kubesvc external-42NFTM6N-ns2/svc2/tcp/p80
add chain ip kubesvc service-42NFTM6N-ns2/svc2/tcp/p80
add map ip kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add rule ip kubesvc external-42NFTM6N-ns2/svc2/tcp/p80 jump mark-for-masquerade
add rule ip kubesvc external-42NFTM6N-ns2/svc2/tcp/p80 goto service-42NFTM6N-ns2/svc2/tcp/p80
add element ip kubesvc cluster-ips-masquerade { 172.30.0.42 . tcp . 80 }
add rule ip kubesvc service-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip kubesvc cluster-ips { 172.30.0.42 }
add element ip kubesvc endpoint-buckets-tcp-0 { 0-65535 : 10.180.0.2 . 80 }
add element ip kubesvc service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kubesvc service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
`,
	"LoadBalancer with loadBalancerSourceRanges": `
add chain ip kubesvc external-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kubesvc firewall-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kubesvc service-HVFWP5L3-ns5/svc5/tcp/p80
add map ip kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add rule ip kubesvc external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kubesvc external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kubesvc firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 198.51.100.0/24, 192.168.0.0/16, 203.0.113.5 } drop
add element ip kubesvc cluster-ips-masquerade { 172.30.0.45 . tcp . 80 }
add rule ip kubesvc service-HVFWP5L3-ns5/svc5/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip kubesvc cluster-ips { 172.30.0.45 }
add element ip kubesvc endpoint-buckets-tcp-0 { 0-65535 : 10.180.0.5 . 8080 }
add element ip kubesvc firewall-ips { 203.0.113.5 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kubesvc service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kubesvc service-ips { 203.0.113.5 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kubesvc service-nodeports { tcp . 3005 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
`,
	"externalIPs": `
add chain ip kubesvc external-NUL5PKWM-ns3/svc3/udp/p53
add chain ip kubesvc service-NUL5PKWM-ns3/svc3/udp/p53
add map ip kubesvc endpoint-buckets-udp-0 { typeof numgen random mod 65536 : ip daddr . udp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add rule ip kubesvc external-NUL5PKWM-ns3/svc3/udp/p53 jump mark-for-masquerade
add rule ip kubesvc external-NUL5PKWM-ns3/svc3/udp/p53 goto service-NUL5PKWM-ns3/svc3/udp/p53
add element ip kubesvc cluster-ips-masquerade { 172.30.0.43 . udp . 53 }
add rule ip kubesvc service-NUL5PKWM-ns3/svc3/udp/p53 meta l4proto udp dnat ip to numgen random mod 65536 map @endpoint-buckets-udp-0
add element ip kubesvc cluster-ips { 172.30.0.43 }
add element ip kubesvc endpoint-buckets-udp-0 { 0-65535 : 10.180.0.3 . 53 }
add element ip kubesvc service-ips { 172.30.0.43 . udp . 53 : goto service-NUL5PKWM-ns3/svc3/udp/p53 }
add element ip kubesvc service-ips { 192.0.2.33 . udp . 53 : goto external-NUL5PKWM-ns3/svc3/udp/p53 }
`,
	"no endpoints: reject": `
add element ip kubesvc cluster-ips { 172.30.0.44 }
add element ip kubesvc no-endpoint-nodeports { tcp . 3004 comment "ns4/svc4:p80" : goto reject-chain }
add element ip kubesvc no-endpoint-services { 172.30.0.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }
add element ip kubesvc no-endpoint-services { 192.0.2.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }
`,
	"ClientIP affinity": `
add chain ip kubesvc endpoint-CD2M2PRI-ns6/svc6/tcp/p80__10.180.0.62/80
add chain ip kubesvc endpoint-CTXLCDQA-ns6/svc6/tcp/p80__10.180.0.61/80
add chain ip kubesvc service-Y3O5BOQO-ns6/svc6/tcp/p80
add set ip kubesvc affinity-HS224N67-ns6/svc6/tcp/p80__10.180.0.62/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add set ip kubesvc affinity-JCPABYND-ns6/svc6/tcp/p80__10.180.0.61/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add rule ip kubesvc endpoint-CD2M2PRI-ns6/svc6/tcp/p80__10.180.0.62/80 update @affinity-HS224N67-ns6/svc6/tcp/p80__10.180.0.62/80 { ip saddr }
add rule ip kubesvc endpoint-CD2M2PRI-ns6/svc6/tcp/p80__10.180.0.62/80 meta l4proto tcp dnat to 10.180.0.62:80
add rule ip kubesvc endpoint-CTXLCDQA-ns6/svc6/tcp/p80__10.180.0.61/80 update @affinity-JCPABYND-ns6/svc6/tcp/p80__10.180.0.61/80 { ip saddr }
add rule ip kubesvc endpoint-CTXLCDQA-ns6/svc6/tcp/p80__10.180.0.61/80 meta l4proto tcp dnat to 10.180.0.61:80
add element ip kubesvc cluster-ips-masquerade { 172.30.0.46 . tcp . 80 }
add rule ip kubesvc service-Y3O5BOQO-ns6/svc6/tcp/p80 ip saddr @affinity-JCPABYND-ns6/svc6/tcp/p80__10.180.0.61/80 goto endpoint-CTXLCDQA-ns6/svc6/tcp/p80__10.180.0.61/80
add rule ip kubesvc service-Y3O5BOQO-ns6/svc6/tcp/p80 ip saddr @affinity-HS224N67-ns6/svc6/tcp/p80__10.180.0.62/80 goto endpoint-CD2M2PRI-ns6/svc6/tcp/p80__10.180.0.62/80
add rule ip kubesvc service-Y3O5BOQO-ns6/svc6/tcp/p80 numgen random mod 2 == 0 goto endpoint-CTXLCDQA-ns6/svc6/tcp/p80__10.180.0.61/80
add rule ip kubesvc service-Y3O5BOQO-ns6/svc6/tcp/p80 goto endpoint-CD2M2PRI-ns6/svc6/tcp/p80__10.180.0.62/80
add element ip kubesvc cluster-ips { 172.30.0.46 }
add element ip kubesvc hairpin-endpoints { 10.180.0.61 . 10.180.0.61 }
add element ip kubesvc service-ips { 172.30.0.46 . tcp . 80 : goto service-Y3O5BOQO-ns6/svc6/tcp/p80 }
`,
	"externalTrafficPolicy Local": `
add chain ip kubesvc external-H5D5N55F-ns7/svc7/tcp/p80
add chain ip kubesvc external-IM37MCWO-ns7/remote/tcp/p80
add chain ip kubesvc local-H5D5N55F-ns7/svc7/tcp/p80
add chain ip kubesvc service-H5D5N55F-ns7/svc7/tcp/p80
add chain ip kubesvc service-IM37MCWO-ns7/remote/tcp/p80
add map ip kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add map ip kubesvc endpoint-buckets-tcp-1 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add map ip kubesvc endpoint-buckets-tcp-2 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add rule ip kubesvc external-H5D5N55F-ns7/svc7/tcp/p80 ip saddr 10.0.0.0/8 goto service-H5D5N55F-ns7/svc7/tcp/p80 comment "short-circuit pod traffic"
add rule ip kubesvc external-H5D5N55F-ns7/svc7/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kubesvc external-H5D5N55F-ns7/svc7/tcp/p80 fib saddr type local goto service-H5D5N55F-ns7/svc7/tcp/p80 comment "short-circuit local traffic"
add rule ip kubesvc external-H5D5N55F-ns7/svc7/tcp/p80 goto local-H5D5N55F-ns7/svc7/tcp/p80
add rule ip kubesvc external-IM37MCWO-ns7/remote/tcp/p80 ip saddr 10.0.0.0/8 goto service-IM37MCWO-ns7/remote/tcp/p80 comment "short-circuit pod traffic"
add rule ip kubesvc external-IM37MCWO-ns7/remote/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kubesvc external-IM37MCWO-ns7/remote/tcp/p80 fib saddr type local goto service-IM37MCWO-ns7/remote/tcp/p80 comment "short-circuit local traffic"
add rule ip kubesvc local-H5D5N55F-ns7/svc7/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 offset 131072 map @endpoint-buckets-tcp-2
add element ip kubesvc cluster-ips-masquerade { 172.30.0.47 . tcp . 80 }
add rule ip kubesvc service-H5D5N55F-ns7/svc7/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 offset 65536 map @endpoint-buckets-tcp-1
add element ip kubesvc cluster-ips-masquerade { 172.30.0.48 . tcp . 80 }
add rule ip kubesvc service-IM37MCWO-ns7/remote/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip kubesvc cluster-ips { 172.30.0.47 }
add element ip kubesvc cluster-ips { 172.30.0.48 }
add element ip kubesvc hairpin-endpoints { 10.180.0.71 . 10.180.0.71 }
add element ip kubesvc hairpin-endpoints { 10.180.0.72 . 10.180.0.72 }
add element ip kubesvc hairpin-endpoints { 10.180.0.73 . 10.180.0.73 }
add element ip kubesvc endpoint-buckets-tcp-0 { 0-65535 : 10.180.0.73 . 80 }
add element ip kubesvc endpoint-buckets-tcp-1 { 65536-98303 : 10.180.0.71 . 80 }
add element ip kubesvc endpoint-buckets-tcp-1 { 98304-131071 : 10.180.0.72 . 80 }
add element ip kubesvc endpoint-buckets-tcp-2 { 131072-196607 : 10.180.0.71 . 80 }
add element ip kubesvc no-endpoint-nodeports { tcp . 3008 comment "ns7/remote:p80" : drop }
add element ip kubesvc service-ips { 172.30.0.47 . tcp . 80 : goto service-H5D5N55F-ns7/svc7/tcp/p80 }
add element ip kubesvc service-ips { 172.30.0.48 . tcp . 80 : goto service-IM37MCWO-ns7/remote/tcp/p80 }
add element ip kubesvc service-ips { 203.0.113.7 . tcp . 80 : goto external-H5D5N55F-ns7/svc7/tcp/p80 }
add element ip kubesvc service-nodeports { tcp . 3007 : goto external-H5D5N55F-ns7/svc7/tcp/p80 }
add element ip kubesvc service-nodeports { tcp . 3008 : goto external-IM37MCWO-ns7/remote/tcp/p80 }
`,
	"internalTrafficPolicy Local": `
add chain ip kubesvc local-QAZH6GIY-ns8/svc8/tcp/p80
add map ip kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add element ip kubesvc cluster-ips-masquerade { 172.30.0.81 . tcp . 80 }
add rule ip kubesvc local-QAZH6GIY-ns8/svc8/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip kubesvc cluster-ips { 172.30.0.81 }
add element ip kubesvc cluster-ips { 172.30.0.82 }
add element ip kubesvc hairpin-endpoints { 10.180.0.81 . 10.180.0.81 }
add element ip kubesvc endpoint-buckets-tcp-0 { 0-65535 : 10.180.0.81 . 80 }
add element ip kubesvc no-endpoint-services { 172.30.0.82 . tcp . 80 comment "ns8/remote:p80" : drop }
add element ip kubesvc service-ips { 172.30.0.81 . tcp . 80 : goto local-QAZH6GIY-ns8/svc8/tcp/p80 }
`,
	"IPv6": `
add chain ip6 kubesvc external-CWPUIX4O-ns9/svc9/tcp/p80
add chain ip6 kubesvc service-CWPUIX4O-ns9/svc9/tcp/p80
add map ip6 kubesvc endpoint-buckets-tcp-0 { typeof numgen random mod 65536 : ip6 daddr . tcp dport ; flags interval ; comment "endpoints of policy chains, by random bucket" ; }
add rule ip6 kubesvc external-CWPUIX4O-ns9/svc9/tcp/p80 jump mark-for-masquerade
add rule ip6 kubesvc external-CWPUIX4O-ns9/svc9/tcp/p80 goto service-CWPUIX4O-ns9/svc9/tcp/p80
add element ip6 kubesvc cluster-ips-masquerade { fd00:30::91 . tcp . 80 }
add rule ip6 kubesvc service-CWPUIX4O-ns9/svc9/tcp/p80 meta l4proto tcp dnat ip6 to numgen random mod 65536 map @endpoint-buckets-tcp-0
add element ip6 kubesvc cluster-ips { fd00:30::91 }
add element ip6 kubesvc hairpin-endpoints { fd00:10::91 . fd00:10::91 }
add element ip6 kubesvc endpoint-buckets-tcp-0 { 0-65535 : fd00:10::91 . 80 }
add element ip6 kubesvc service-ips { fd00:30::91 . tcp . 80 : goto service-CWPUIX4O-ns9/svc9/tcp/p80 }
add element ip6 kubesvc service-nodeports { tcp . 3009 : goto external-CWPUIX4O-ns9/svc9/tcp/p80 }
`,
}
