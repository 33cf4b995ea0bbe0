// A full-resolution still from a live camera track, for the clerk's remote capture (远程拍照).
// ImageCapture.takePhoto() uses the camera's photo resolution; where the browser lacks it,
// the current video frame is drawn at the track's own size.
interface ImageCaptureLike {
  takePhoto(settings?: Record<string, unknown>): Promise<Blob>;
  grabFrame(): Promise<ImageBitmap>;
}
type ImageCaptureCtor = new (track: MediaStreamTrack) => ImageCaptureLike;

declare global {
  interface Window {
    /** Not in TypeScript's DOM library (Chromium has it; Firefox and Safari do not). */
    ImageCapture?: ImageCaptureCtor;
  }
}

function toJpeg(source: CanvasImageSource, width: number, height: number): Promise<Blob> {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return Promise.reject(new Error("canvas unavailable"));
  ctx.drawImage(source, 0, 0, width, height);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("encode failed"))), "image/jpeg", 0.92),
  );
}

async function fromVideoElement(track: MediaStreamTrack): Promise<Blob> {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  await video.play();
  try {
    return await toJpeg(video, video.videoWidth, video.videoHeight);
  } finally {
    video.pause();
    video.srcObject = null;
  }
}

export async function takeStill(track: MediaStreamTrack): Promise<Blob> {
  const Ctor = window.ImageCapture;
  if (Ctor) {
    const capture = new Ctor(track);
    try {
      const photo = await capture.takePhoto();
      if (photo.size > 0) return photo;
    } catch {
      // some cameras have no photo mode: fall back to a frame
    }
    try {
      const frame = await capture.grabFrame();
      return await toJpeg(frame, frame.width, frame.height);
    } catch {
      // fall through to the video element
    }
  }
  return fromVideoElement(track);
}
