// Page load to first durable write, on a page that loads only @cairn/client (what an app
// does): from navigation start to the moment the first change is committed to IndexedDB.
// The repository name comes from the query (`?name=`), so a reload writes to an existing one.
import { Cairn } from '@cairn/client';

const name = new URLSearchParams(location.search).get('name') ?? 'first';
const marks = { imported: performance.now() };
const repo = await Cairn.open({ name });
marks.opened = performance.now();
await repo.create({ hello: 'world' });
window.firstWrite = Math.round(performance.now());
window.firstMarks = marks; // where the time went (ms since navigation start)
repo.close();
document.getElementById('state').textContent = `first durable write at ${window.firstWrite} ms`;
document.body.dataset.done = 'true';
