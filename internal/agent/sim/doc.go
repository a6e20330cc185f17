// Package sim is a simulated node agent: a kubelet stand-in that runs no containers
// but makes a Node and its pods behave, as seen through the API, like a real node's.
// It needs no root and no network namespaces, so a laptop or a test can run many of
// them against one API server (`kubesvc agent --simulate`). It is for testing and
// benchmarking the control plane at scale, and it says so: every pod's
// status.message is PodStatusMessage ("kubesvc simulated node: containers are not
// run") and every event it records starts with EventPrefix ("[simulated] ").
//
// What it does, as the kubelet does:
//   - registers the Node (labels kubernetes.io/hostname, kubernetes.io/os,
//     kubernetes.io/arch and their beta twins; an InternalIP address — from
//     Config.NodeIP or derived from the node name in 192.0.2.0/24 (TEST-NET-1) —
//     and Hostname; capacity and allocatable cpu, memory, ephemeral-storage and pods;
//     nodeInfo with kubeletVersion KubeletVersion, the version the API server
//     reports, v1.37.2-kubesvc); an existing Node is reused;
//   - renews the Lease kube-node-lease/<node> every LeaseRenewInterval (10s, lease
//     duration 40s) — the heartbeat the node lifecycle controller watches;
//   - checks its Node status every NodeStatusUpdateFrequency (10s) and posts it when
//     it changed or NodeStatusReportFrequency (5m) has passed, and at once when the
//     Node is changed by someone else (Ready=Unknown from the node lifecycle
//     controller, for example): conditions MemoryPressure, DiskPressure, PIDPressure
//     False and Ready True with the kubelet's reasons and messages;
//   - for every pod bound to the node (one informer with fieldSelector
//     spec.nodeName=<node>, a work queue, Config.Workers goroutines) reports it
//     Running: podIP/podIPs allocated sequentially from the Node's spec.podCIDRs
//     (it waits until node IPAM has set them; the network and .1 gateway addresses
//     are never used; an IP is not reused while a pod on the node holds it; on
//     start the IPs of the pods already running are taken back), hostIP/hostIPs,
//     startTime, containerStatuses (running, started, ready, image, imageID
//     sim://<image>, containerID sim://...), init containers Completed, and the
//     conditions PodReadyToStartContainers, Initialized, Ready, ContainersReady,
//     PodScheduled. A container with a readinessProbe becomes ready
//     initialDelaySeconds after it started; readiness gates are honoured.
//     hostNetwork pods get the node IP. It records a SimulatedStart event per
//     container (not the kubelet's Pulled, Created and Started: nothing was pulled
//     or started);
//   - completes one-shot pods: a pod with restartPolicy Never or OnFailure is
//     reported running for OneShotRunTime (1s), then Succeeded with its containers
//     terminated (exit code 0, reason Completed); a SimulatedCompleted event per
//     container;
//   - checks image references, the one thing about an image it can check: no image
//     is pulled, so a reference that parses is reported running whether or not the
//     image exists, while one that does not parse is reported as the kubelet does
//     (container waiting with reason InvalidImageName, an InspectFailed warning,
//     the pod Pending);
//   - finishes deletions: a pod with deletionTimestamp keeps running until the end
//     of its grace period (deletionTimestamp), then its containers are shown
//     terminated (exit code 0, reason Completed, phase Succeeded) and the pod is
//     deleted with grace period 0. It records SimulatedStop events.
//
// Not simulated: container processes, image pulls (ErrImagePull for an image that
// does not exist), probes other than the readiness delay (liveness, startup),
// restarts and failing containers, logs, exec and port-forward, volumes, resource
// limits and admission by the node (kubelet rejects pods it has no room for; the
// scheduler already keeps within allocatable).
//
// Run stops cleanly when its context ends (SIGTERM in `kubesvc agent`); like the
// kubelet it leaves the Node behind, and the node lifecycle controller marks it
// Unknown once the Lease expires.
package sim
