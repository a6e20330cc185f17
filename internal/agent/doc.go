// Package agent is kubesvc's node agent: the kubelet of a node whose pods are
// processes. It registers the Node and keeps its status and Lease, gives pods their
// network (through podnet.Network), runs their containers (through
// runtime.Runtime, with programs from an ImageResolver), probes them, restarts
// them, ends them, and reports their status as the kubelet does. It talks to the
// rest of the cluster only through the API.
//
// The Node: created or taken over at start (labels kubernetes.io/hostname, os and
// arch; addresses InternalIP and Hostname; capacity and allocatable cpu, memory,
// ephemeral-storage of RootDir's file system, pods and huge pages; nodeInfo from the
// machine, kubeletVersion the API server's version, containerRuntimeVersion
// kubesvc://VERSION); its status checked every NodeStatusUpdateFrequency (10 s) and
// posted when it changed or every NodeStatusReportFrequency (5 min); the Lease
// kube-node-lease/NODE renewed every 10 s with leaseDurationSeconds 40. The
// conditions are the kubelet's, with its reasons and messages; Ready is False
// (KubeletNotReady, "container runtime network not ready: ...") until the Node has
// spec.podCIDRs (from node IPAM) and Network.Ensure succeeded. Routes to every other
// Node's pod CIDRs via its InternalIP follow the Node objects (Network.SyncRoutes).
//
// Pods: an informer on the pods bound to the node (fieldSelector spec.nodeName)
// feeds one worker goroutine per pod UID (the kubelet's pod workers). A sync
// creates the pod's network (Network.AddPod), writes RootDir/pods/UID/{etc-hosts,
// resolv.conf,hostname} in the kubelet's formats, prepares the volumes (emptyDir,
// configMap, secret, downwardAPI, projected, hostPath) under
// RootDir/pods/UID/volumes/, builds each container's environment (env with every
// valueFrom, envFrom, the Service variables), expands $(VAR) in command and args,
// resolves the program (ImageResolver; an image it cannot run is ErrImagePull, then
// ImagePullBackOff), runs the init containers in order (sidecars kept running) and
// the containers, restarts them per restartPolicy with the crash-loop back-off
// (10 s doubling to 5 min, reset after 10 min of running), and writes the status
// (status subresource) when it changed. Container exits are noticed by listing the
// runtime every RelistPeriod (the kubelet's PLEG). A pod with a deletionTimestamp
// has its containers stopped within the grace period (preStop hooks first), its
// network removed, and is deleted with grace period 0 and a UID precondition.
//
// Probes: one goroutine per container and probe (readiness, liveness, startup;
// httpGet, tcpSocket, exec, grpc; every timing field), dialing the pod IP from the
// node. Readiness decides the container's ready and the pod's Ready; a failed
// liveness or startup probe restarts the container ("Container NAME failed liveness
// probe, will be restarted").
//
// Restart safety: Run adopts what Runtime.List and Network.ListPods report for pods
// still in the API (same container IDs and IPs, restart counts and readiness from
// their status), cleans up the rest, and releases addresses allocated to pods that
// have neither (when the Network can: ReleaseOrphanIPs). A container the status
// shows but the runtime lost is reported terminated (137, ContainerStatusUnknown)
// and started again. Stopping the agent stops no pod.
//
// Events have the kubelet's reasons and messages, source component "kubelet" and
// host the node's name, with one exception where the kubelet's text would not be
// true: nothing is pulled, so Pulled says what runs ("Container image "nginx" is
// built into kubesvc").
//
// Kubelet server: with Config.KubeletClientCA (the cluster CA) Run serves package
// kubeletserver on Config.KubeletPort, the port the Node advertises, for the API
// server's client certificate only: container logs found from the pod's status
// (the kubelet's validateContainerLogStatus) and the runtime's log path.
//
// Metrics (Config.Registerer), with the kubelet's names: kubelet_running_pods,
// kubelet_running_containers{container_state},
// kubelet_pod_start_duration_seconds, prober_probe_total.
//
// Not done here (yet): container logs rotation (the runtime writes LogPath),
// resource limits, termination messages (/dev/termination-log), ephemeral
// containers, in-place resize, pod-level resources, volume types other than the
// six above (the pod stays ContainerCreating with a FailedMount event naming the
// type), emptyDir medium Memory as tmpfs (it is a directory on RootDir's disk),
// configMap and secret volumes changing atomically through ..data links (files are
// replaced one by one, every minute), eviction (the pressure conditions are reported,
// nothing is evicted).
package agent
