"""Drives the Python Kubernetes client against the server of $KUBECONFIG.

As a program using the client would: list, create, patch (strategic merge
and JSON patch), a watch (kubernetes.watch.Watch, which sends
watch=True) and an informer-style list-then-watch with a cache (resuming from
the list's resourceVersion, with allowWatchBookmarks=True) on Services, and
delete. Each step prints "ok: STEP ..." on stdout; the watch's and the cache's
events for the test's Service are printed last. The first failure prints
"FAIL: ..." on stderr and exits 1. Run by test/e2e/clients_test.go with
Debian's python3-kubernetes (/usr/bin/python3).
"""

import sys
import threading

from kubernetes import client, config, watch

NAMESPACE = "default"
NAME = "py-client"
# A guard against a hang, not a speed check: a missing event fails the run
# instead of blocking it forever.
PATIENCE = 60


def fail(msg):
    print("FAIL: %s" % msg, file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Recorder:
    """Events of the test's Service seen by a watch, and the errors that ended it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.events = []
        self.errors = []

    def add(self, typ):
        with self.cond:
            self.events.append(typ)
            self.cond.notify_all()

    def error(self, err):
        with self.cond:
            self.errors.append(err)
            self.cond.notify_all()

    def wait(self, what, pred):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.events) or self.errors, timeout=PATIENCE):
                fail("no %s within %ds (events so far: %s)" % (what, PATIENCE, self.events))
            if self.errors:
                fail("watch failed: %s" % self.errors[0])


def plain_watch(v1, rec, started):
    """Watch all Services of the namespace from now (no resourceVersion: the
    server sends the existing ones as ADDED first, so the kubernetes Service's
    ADDED tells that the watch is in place) until ours is deleted."""
    w = watch.Watch()
    try:
        for ev in w.stream(v1.list_namespaced_service, NAMESPACE):
            obj = ev["object"]
            if obj.metadata.name == "kubernetes":
                started.set()
            if obj.metadata.name == NAME:
                rec.add(ev["type"])
                if ev["type"] == "DELETED":
                    return
    except Exception as err:  # reported to the main thread
        rec.error(err)
    finally:
        w.stop()


def informer(v1, rec, cache, rv):
    """The informer pattern: watch from the list's resourceVersion, keeping a
    cache of the Services by name."""
    w = watch.Watch()
    try:
        for ev in w.stream(v1.list_namespaced_service, NAMESPACE, resource_version=rv,
                           allow_watch_bookmarks=True):
            if ev["type"] == "BOOKMARK":
                continue
            obj = ev["object"]
            with rec.cond:
                if ev["type"] == "DELETED":
                    cache.pop(obj.metadata.name, None)
                else:
                    cache[obj.metadata.name] = obj
            if obj.metadata.name == NAME:
                rec.add(ev["type"])
                if ev["type"] == "DELETED":
                    return
    except Exception as err:  # reported to the main thread
        rec.error(err)
    finally:
        w.stop()


def main():
    config.load_kube_config()
    v1 = client.CoreV1Api()

    # list
    names = [ns.metadata.name for ns in v1.list_namespace().items]
    check("default" in names and "kube-system" in names, "namespaces %s" % names)
    services = v1.list_namespaced_service(NAMESPACE)
    check(any(s.metadata.name == "kubernetes" for s in services.items), "no kubernetes Service in %s" % NAMESPACE)
    check(services.metadata.resource_version, "the list has no resourceVersion")
    print("ok: list namespaces=%d services=%d" % (len(names), len(services.items)), flush=True)

    # informer: the list above is its initial state
    cache = {s.metadata.name: s for s in services.items}
    cached = Recorder()
    threading.Thread(target=informer, args=(v1, cached, cache, services.metadata.resource_version), daemon=True).start()
    print("ok: informer started cached=%d" % len(cache), flush=True)

    # watch
    watched = Recorder()
    started = threading.Event()
    threading.Thread(target=plain_watch, args=(v1, watched, started), daemon=True).start()
    check(started.wait(PATIENCE), "the watch did not start")
    print("ok: watch started", flush=True)

    # create
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name=NAME, labels={"app": NAME}),
        spec=client.V1ServiceSpec(selector={"app": NAME},
                                  ports=[client.V1ServicePort(port=80, target_port=8080)]))
    created = v1.create_namespaced_service(NAMESPACE, body)
    check(created.spec.cluster_ip and created.spec.cluster_ip != "None", "clusterIP %s" % created.spec.cluster_ip)
    check(created.spec.ports[0].protocol == "TCP", "port protocol %s" % created.spec.ports[0].protocol)
    print("ok: create clusterIP=%s" % created.spec.cluster_ip, flush=True)

    # list with a label selector
    selected = v1.list_namespaced_service(NAMESPACE, label_selector="app=%s" % NAME)
    check([s.metadata.name for s in selected.items] == [NAME], "labelSelector app=%s: %d items" % (NAME, len(selected.items)))
    print("ok: list labelSelector", flush=True)

    # patch: the client sends a dict as a strategic merge patch and a list as a
    # JSON patch (this version has no way to ask for a merge patch).
    p = v1.patch_namespaced_service(NAME, NAMESPACE, {"metadata": {"labels": {"patched": "strategic"}}})
    check(p.metadata.labels.get("patched") == "strategic", "labels after the strategic merge patch: %s" % p.metadata.labels)
    p = v1.patch_namespaced_service(NAME, NAMESPACE, [{"op": "replace", "path": "/metadata/labels/patched", "value": "json"}])
    check(p.metadata.labels.get("patched") == "json", "labels after the JSON patch: %s" % p.metadata.labels)
    print("ok: patch strategic json", flush=True)

    two_modified = lambda evs: evs.count("MODIFIED") >= 2  # noqa: E731
    watched.wait("MODIFIED events of the two patches", two_modified)
    cached.wait("MODIFIED events of the two patches in the informer", two_modified)
    with cached.cond:
        check(cache[NAME].metadata.labels.get("patched") == "json", "the informer's cache has labels %s" % cache[NAME].metadata.labels)

    # delete
    v1.delete_namespaced_service(NAME, NAMESPACE)
    print("ok: delete", flush=True)
    watched.wait("DELETED event", lambda evs: "DELETED" in evs)
    cached.wait("DELETED event in the informer", lambda evs: "DELETED" in evs)
    with cached.cond:
        check(NAME not in cache, "the deleted Service is still in the informer's cache")

    print("watch: %s" % " ".join(watched.events), flush=True)
    print("informer: %s" % " ".join(cached.events), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # an ApiException, a connection error
        fail("%s: %s" % (type(err).__name__, err))
