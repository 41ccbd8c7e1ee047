/**
 * Audio as the voice pipeline passes it around: 16-bit signed little-endian PCM with its sample
 * rate and channel count, and a WAV (RIFF/PCM) wrapper for APIs that take an audio file.
 */

export interface PcmAudio {
  /** Interleaved s16le samples. */
  pcm: Uint8Array;
  sampleRate: number;
  channels: number;
}

export function pcmDurationMs(audio: PcmAudio): number {
  return (audio.pcm.byteLength / (2 * audio.channels * audio.sampleRate)) * 1000;
}

/** A 44-byte-header WAV file around s16le PCM. */
export function encodeWav(audio: PcmAudio): Buffer {
  const header = Buffer.alloc(44);
  const byteRate = audio.sampleRate * audio.channels * 2;
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + audio.pcm.byteLength, 4);
  header.write("WAVE", 8, "ascii");
  header.write("fmt ", 12, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(audio.channels, 22);
  header.writeUInt32LE(audio.sampleRate, 24);
  header.writeUInt32LE(byteRate, 28);
  header.writeUInt16LE(audio.channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(audio.pcm.byteLength, 40);
  return Buffer.concat([header, audio.pcm]);
}
