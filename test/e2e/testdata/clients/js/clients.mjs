// Drives @kubernetes/client-node against the server of $KUBECONFIG, as a
// program using it would: list, create, patch (JSON patch and merge patch), a
// watch (Watch) and an informer (makeInformer) on Services, and delete. Each
// step prints "ok: STEP ..." on stdout; the watch's and the informer's events
// for the test's Service are printed last. The first failure prints
// "FAIL: ..." on stderr and exits 1. Run by test/e2e/clients_test.go.
import * as k8s from '@kubernetes/client-node';

const namespace = 'default';
const name = 'js-client';
// A guard against a hang, not a speed check: a missing event fails the run
// instead of blocking it forever.
const patience = 60_000;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

// until resolves once cond() is true, re-checking after every event.
function until(what, cond, waiters) {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`no ${what} within ${patience / 1000}s`), patience);
    waiters.push(() => {
      if (cond()) {
        clearTimeout(timer);
        resolve();
        return true;
      }
      return false;
    });
  });
}

function wake(waiters) {
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i]()) waiters.splice(i, 1);
  }
}

async function main() {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const waiters = [];

  // list
  const nsList = await core.listNamespace();
  const nsNames = nsList.items.map((ns) => ns.metadata.name);
  check(nsNames.includes('default') && nsNames.includes('kube-system'), `namespaces ${nsNames}`);
  const svcList = await core.listNamespacedService({ namespace });
  check(svcList.items.some((s) => s.metadata.name === 'kubernetes'), `no kubernetes Service in ${namespace}`);
  check(svcList.metadata.resourceVersion, 'the list has no resourceVersion');
  console.log(`ok: list namespaces=${nsNames.length} services=${svcList.items.length}`);

  // informer: list, then watch from the list's resourceVersion, with a cache.
  const informerEvents = [];
  const informer = k8s.makeInformer(
    kc,
    `/api/v1/namespaces/${namespace}/services`,
    () => core.listNamespacedService({ namespace }),
  );
  for (const verb of [k8s.ADD, k8s.UPDATE, k8s.DELETE]) {
    informer.on(verb, (obj) => {
      if (obj.metadata.name === name) {
        informerEvents.push(verb);
        wake(waiters);
      }
    });
  }
  let stopping = false; // stopping aborts the informer's watch: not an error
  informer.on(k8s.ERROR, (err) => stopping || fail(`informer error: ${err}`));
  await informer.start();
  check(informer.get('kubernetes', namespace), "the informer's cache has no kubernetes Service");
  console.log(`ok: informer started cached=${informer.list(namespace).length}`);

  // watch
  const watchEvents = [];
  const watch = new k8s.Watch(kc);
  const abort = await watch.watch(
    `/api/v1/namespaces/${namespace}/services`,
    { resourceVersion: svcList.metadata.resourceVersion, allowWatchBookmarks: true },
    (phase, obj) => {
      if (obj.metadata && obj.metadata.name === name) {
        watchEvents.push(phase);
        wake(waiters);
      }
    },
    (err) => {
      if (err && !stopping) fail(`watch ended: ${err}`);
    },
  );
  console.log('ok: watch started');

  // create
  const created = await core.createNamespacedService({
    namespace,
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels: { app: name } },
      spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  check(created.spec.clusterIP && created.spec.clusterIP !== 'None', `clusterIP ${created.spec.clusterIP}`);
  check(created.spec.ports[0].protocol === 'TCP', `port protocol ${created.spec.ports[0].protocol}`);
  console.log(`ok: create clusterIP=${created.spec.clusterIP}`);

  // get with a label selector
  const selected = await core.listNamespacedService({ namespace, labelSelector: `app=${name}` });
  check(selected.items.length === 1 && selected.items[0].metadata.name === name, `labelSelector app=${name}: ${selected.items.length} items`);
  console.log('ok: list labelSelector');

  // patch: the client's default JSON patch, then a merge patch.
  const jsonPatched = await core.patchNamespacedService({
    name,
    namespace,
    body: [{ op: 'add', path: '/metadata/labels/patched', value: 'json' }],
  });
  check(jsonPatched.metadata.labels.patched === 'json', `labels after the JSON patch: ${JSON.stringify(jsonPatched.metadata.labels)}`);
  const mergePatched = await core.patchNamespacedService(
    { name, namespace, body: { metadata: { labels: { patched: 'merge' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  check(mergePatched.metadata.labels.patched === 'merge', `labels after the merge patch: ${JSON.stringify(mergePatched.metadata.labels)}`);
  console.log('ok: patch json merge');

  await until('MODIFIED event with the merge patch', () => watchEvents.filter((e) => e === 'MODIFIED').length >= 2, waiters);
  await until('informer update', () => informerEvents.includes(k8s.UPDATE) && informer.get(name, namespace)?.metadata.labels.patched === 'merge', waiters);

  // delete
  await core.deleteNamespacedService({ name, namespace });
  console.log('ok: delete');
  await until('DELETED event', () => watchEvents.includes('DELETED'), waiters);
  await until('informer delete', () => informerEvents.includes(k8s.DELETE), waiters);
  check(!informer.get(name, namespace), 'the deleted Service is still in the informer cache');

  stopping = true;
  abort.abort();
  await informer.stop();
  console.log(`watch: ${watchEvents.join(' ')}`);
  console.log(`informer: ${informerEvents.join(' ')}`);
  process.exit(0);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
