// Package kubeletserver is the node agent's kubelet server: the HTTPS endpoint the
// Node advertises in status.daemonEndpoints.kubeletEndpoint (kubelet's port
// 10250), through which the API server reaches the node for what it cannot do
// from storage alone.
//
// It serves, as the kubelet does,
//
//	GET /containerLogs/{namespace}/{pod}/{container}
//
// with kubelet's query parameters (follow, tailLines or tail, sinceSeconds,
// sinceTime, timestamps, previous, limitBytes): the container's output read back
// from the CRI log files the runtime writes (see ReadLogs), streamed while the
// container runs when follow is set. Which files belong to which container
// instance is the LogLocator's business (the agent implements it from the pod's
// status and the runtime), so that the server is tested with fake files.
//
// Security: nothing is served without TLS, and only clients whose certificate
// chains to Config.ClientCAs (the cluster CA) and names one of
// Config.AllowedUsers (the API server's kubelet client,
// "kube-apiserver-kubelet-client") are served: no certificate is 401
// Unauthorized, another identity 403 Forbidden, with kubelet's texts. The serving
// certificate is self-signed unless one is given: kube-apiserver does not verify
// kubelet serving certificates unless --kubelet-certificate-authority is set, and
// kubesvc's API server does not either.
//
// Errors are answered as the kubelet answers them, in plain text: 400 for a query
// that does not decode, 422 for invalid options, 404 for an unknown pod or
// container, 400 with the LogLocator's message otherwise (for example
// `container "app" in pod "web" is waiting to start: ContainerCreating`); the API
// server turns these into Status objects.
//
// It also serves kubelet's exec and port-forward,
//
//	GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=...&input=1&output=1&error=1&tty=1
//	GET|POST /portForward/{namespace}/{pod}[/{uid}]
//
// with the streaming servers Kubernetes publishes (k8s.io/cri-streaming:
// remotecommand over SPDY v1 to v4 and WebSocket channel.k8s.io up to v4,
// portforward.k8s.io over SPDY and WebSocket), the commands run and the ports
// reached by the Streamer (the agent: its runtime's Exec and ExecTTY, and a
// connection to localhost in the pod's network namespace); and GET /healthz.
// Not here: attach (the process runtime keeps no stdin of a container).
package kubeletserver
