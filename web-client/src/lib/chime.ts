// A clear two-tone chime drawn with WebAudio (no sound file to ship). Browsers only let a
// page make sound after a click, so the context is created at the first click or key.
let context: AudioContext | null = null;

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

/** "Ding-dong", twice: loud enough to hear across a community office. */
export function chime(): boolean {
  const ctx = ensure();
  if (!ctx) return false;
  const start = ctx.currentTime + 0.05;
  const notes: [number, number][] = [
    [880, 0], [660, 0.45], [880, 1.1], [660, 1.55],
  ];
  for (const [frequency, at] of notes) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + at);
    gain.gain.exponentialRampToValueAtTime(0.5, start + at + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.42);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start + at);
    osc.stop(start + at + 0.45);
  }
  return true;
}
