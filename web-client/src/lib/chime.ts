// Sounds drawn with WebAudio (no sound files to ship). Browsers only let a page make sound
// after a click, so the context is created at the first click or key. `sounds` counts what
// was played, by kind, for support staff and the browser tests (window.yb.sounds).
let context: AudioContext | null = null;

export const sounds: Record<string, number> = { called: 0, invitation: 0 };

function ensure(): AudioContext | null {
  if (!context && typeof AudioContext !== "undefined") context = new AudioContext();
  if (context?.state === "suspended") void context.resume();
  return context;
}

export function unlockAudioOnFirstGesture(): void {
  const unlock = () => {
    ensure();
    window.removeEventListener("pointerdown", unlock);
    window.removeEventListener("keydown", unlock);
  };
  window.addEventListener("pointerdown", unlock);
  window.addEventListener("keydown", unlock);
}

function play(kind: string, notes: [frequency: number, at: number][], length = 0.42): boolean {
  sounds[kind] = (sounds[kind] ?? 0) + 1;
  const ctx = ensure();
  if (!ctx) return false;
  const start = ctx.currentTime + 0.05;
  for (const [frequency, at] of notes) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + at);
    gain.gain.exponentialRampToValueAtTime(0.5, start + at + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + at + length);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + at);
    osc.stop(start + at + length + 0.03);
  }
  return true;
}

/** "Ding-dong", twice: loud enough to hear across a community office (a ticket is called). */
export function chime(): boolean {
  return play("called", [[880, 0], [660, 0.45], [880, 1.1], [660, 1.55]]);
}

/** Three rising notes, twice: an expert is invited to a consultation. */
export function invitationSound(): boolean {
  return play("invitation", [[523, 0], [659, 0.18], [784, 0.36], [523, 0.9], [659, 1.08], [784, 1.26]], 0.3);
}
