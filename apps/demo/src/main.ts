// The page's entry: read the address, ask for room and name when it has none, then open the
// camera and join the room.
import type { InspectionEvent } from 'xstate';
import { RoomPage } from './app.js';
import { byTestId, show } from './dom.js';
import { InspectionModel } from './inspection-model.js';
import { MachineView } from './machine-view.js';
import { LocalMedia } from './local-media.js';
import { nameProblem, readSettings, roomUrl, suggestRoomName } from './settings.js';
import type { PageSettings } from './settings.js';
import { Notices } from './notices.js';

/** `?inspect=1`: the Stately inspector, loaded only when asked (it opens stately.ai in a pop-up). */
async function loadInspector(): Promise<((event: InspectionEvent) => void) | undefined> {
  try {
    const { createBrowserInspector } = await import('@statelyai/inspect');
    const inspector = createBrowserInspector();
    return (event) => inspector.inspect.next?.(event);
  } catch (error) {
    console.warn('inspector:', error);
    return undefined;
  }
}

function showJoinForm(settings: PageSettings): void {
  const form = byTestId<HTMLFormElement>('join-form');
  const room = byTestId<HTMLInputElement>('join-room');
  const name = byTestId<HTMLInputElement>('join-name');
  const error = byTestId('join-error');
  room.value = settings.draft.room !== '' ? settings.draft.room : suggestRoomName();
  name.value = settings.draft.name;
  show(byTestId('join-view'), true);
  (settings.draft.room !== '' ? name : room).focus();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const problem = nameProblem('room', room.value.trim()) ?? nameProblem('name', name.value.trim());
    error.textContent = problem ?? '';
    show(error, problem !== null);
    if (problem !== null) return;
    // The address now names the room: reload-safe, and the invite link is the address bar.
    history.replaceState(null, '', roomUrl(new URL(location.href), room.value.trim(), name.value.trim()));
    show(byTestId('join-view'), false);
    void enterRoom(readSettings(new URL(location.href)));
  });
}

const notices = new Notices(byTestId('notices'));

/**
 * Every machine of the page reports to the live machine view (it draws only while open), and to
 * the Stately inspector as well when `?inspect=1` loaded it.
 */
function inspectorsFor(model: InspectionModel, stately: ((event: InspectionEvent) => void) | undefined): (label: string) => (event: InspectionEvent) => void {
  return (label) => {
    const local = model.inspector(label);
    if (!stately) return local;
    return (event) => {
      local(event);
      stately(event);
    };
  };
}

async function enterRoom(settings: PageSettings): Promise<void> {
  const join = settings.join;
  if (!join) return;
  show(byTestId('room-view'), true);
  const model = new InspectionModel();
  const view = new MachineView(model);
  document.body.append(view.element);
  byTestId('open-machine-view').addEventListener('click', () => view.toggle());
  if (settings.machineView) view.open();
  const media = new LocalMedia();
  const [stately] = await Promise.all([settings.inspect ? loadInspector() : Promise.resolve(undefined), media.open()]);
  new RoomPage(settings, join, media, inspectorsFor(model, stately), notices).start();
}

const settings = readSettings(new URL(location.href));
settings.problems.forEach((text, index) => notices.set(`address-${index}`, { tone: 'warning', text }));
if (settings.join) void enterRoom(settings);
else showJoinForm(settings);
