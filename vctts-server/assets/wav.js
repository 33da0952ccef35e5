// WAV and PCM helpers for the playground: header parsing, sample decoding,
// WAV building, and a streaming player on the Web Audio API.
//
// MediaSource cannot play WAV, so streamed synthesis is played by reading the
// response body, parsing the WAV header (a streaming WAV has 0xFFFFFFFF sizes),
// decoding each chunk's PCM and scheduling it as an AudioBuffer right after
// the previous one. Invariants: a sample split across two network chunks is
// carried over, never dropped or misaligned; playback is gapless because each
// buffer starts exactly where the previous one ends; nothing is scheduled in
// the past (late chunks start a little after "now").

/** Parses a WAV header. Returns `{format, channels, sampleRate, bits, dataOffset, dataSize}` or null when more bytes are needed; throws when it is not a WAV. */
export function parseWavHeader(bytes) {
  if (bytes.length < 12) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o) => String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]);
  if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV stream (no RIFF/WAVE header)');
  let offset = 12;
  let fmt = null;
  while (offset + 8 <= bytes.length) {
    const id = tag(offset);
    const size = dv.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (body + 16 > bytes.length) return null;
      let format = dv.getUint16(body, true);
      const channels = dv.getUint16(body + 2, true);
      const sampleRate = dv.getUint32(body + 4, true);
      const bits = dv.getUint16(body + 14, true);
      if (format === 0xfffe && size >= 40) {
        if (body + 26 > bytes.length) return null;
        format = dv.getUint16(body + 24, true);
      }
      fmt = { format, channels, sampleRate, bits };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk before its fmt chunk');
      return { ...fmt, dataOffset: body, dataSize: size };
    }
    if (size === 0xffffffff) throw new Error(`WAV chunk ${id} has no size`);
    offset = body + size + (size % 2);
  }
  return null;
}

/** Bytes per sample of a format (1 = integer PCM, 3 = IEEE float). */
export function bytesPerSample(fmt) {
  if (fmt.format === 1 && (fmt.bits === 16 || fmt.bits === 24 || fmt.bits === 32 || fmt.bits === 8)) return fmt.bits / 8;
  if (fmt.format === 3 && fmt.bits === 32) return 4;
  throw new Error(`unsupported WAV sample format ${fmt.format}/${fmt.bits} bits`);
}

/** Decodes whole frames of interleaved PCM into one Float32Array per channel. */
export function decodeFrames(bytes, fmt) {
  const bps = bytesPerSample(fmt);
  const frameBytes = bps * fmt.channels;
  const frames = Math.floor(bytes.length / frameBytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, frames * frameBytes);
  const out = [];
  for (let c = 0; c < fmt.channels; c += 1) out.push(new Float32Array(frames));
  for (let i = 0; i < frames; i += 1) {
    for (let c = 0; c < fmt.channels; c += 1) {
      const o = i * frameBytes + c * bps;
      let v;
      if (fmt.format === 3) v = dv.getFloat32(o, true);
      else if (bps === 2) v = dv.getInt16(o, true) / 32768;
      else if (bps === 1) v = (dv.getUint8(o) - 128) / 128;
      else if (bps === 3) v = (((dv.getUint8(o + 2) << 24) | (dv.getUint8(o + 1) << 16) | (dv.getUint8(o) << 8)) >> 8) / 8388608;
      else v = dv.getInt32(o, true) / 2147483648;
      out[c][i] = v;
    }
  }
  return out;
}

/** A 16-bit (or as given) PCM WAV file from raw interleaved sample bytes. */
export function buildWav(pcm, { sampleRate, channels = 1, bits = 16, format = 1 }) {
  const header = new ArrayBuffer(44);
  const dv = new DataView(header);
  const put = (o, s) => { for (let i = 0; i < 4; i += 1) dv.setUint8(o + i, s.charCodeAt(i)); };
  put(0, 'RIFF');
  dv.setUint32(4, 36 + pcm.length, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, format, true);
  dv.setUint16(22, channels, true);
  dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * channels * (bits / 8), true);
  dv.setUint16(32, channels * (bits / 8), true);
  dv.setUint16(34, bits, true);
  put(36, 'data');
  dv.setUint32(40, pcm.length, true);
  return new Blob([header, pcm], { type: 'audio/wav' });
}

/** The sample rate of `audio/pcm;rate=N` (or `audio/L16;rate=N`), else undefined. */
export function pcmRate(contentType) {
  const m = /(?:^|;)\s*rate=(\d+)/i.exec(contentType || '');
  return m ? Number(m[1]) : undefined;
}

/** Concatenates Uint8Arrays. */
export function concat(parts, total) {
  const out = new Uint8Array(total ?? parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/**
 * Plays a streamed WAV or raw PCM body as it arrives.
 *
 * `ctx` is an AudioContext created in the user's click (autoplay rules);
 * `contentType` decides WAV vs. raw s16le PCM. `onProgress({seconds, firstAudioMs})`
 * reports what has been scheduled. Resolves to `{blob, seconds, sampleRate, firstAudioMs}`
 * once the body ends: a complete WAV of everything received, for the audio
 * element and the download link.
 */
export async function playStream(response, ctx, contentType, onProgress, started = performance.now()) {
  const reader = response.body.getReader();
  const isPcm = /audio\/(pcm|l16)/i.test(contentType || '');
  let fmt = isPcm ? { format: 1, channels: 1, sampleRate: pcmRate(contentType) || 24000, bits: 16, dataOffset: 0 } : null;
  let head = new Uint8Array(0);
  let carry = new Uint8Array(0);
  const pcmParts = [];
  let pcmBytes = 0;
  let nextTime = 0;
  let seconds = 0;
  let firstAudioMs;

  const schedule = (bytes) => {
    if (!bytes.length) return;
    const frameBytes = bytesPerSample(fmt) * fmt.channels;
    const joined = carry.length ? concat([carry, bytes]) : bytes;
    const whole = joined.length - (joined.length % frameBytes);
    carry = joined.slice(whole);
    if (!whole) return;
    const chunk = joined.subarray(0, whole);
    pcmParts.push(chunk.slice());
    pcmBytes += whole;
    const channels = decodeFrames(chunk, fmt);
    const buffer = ctx.createBuffer(fmt.channels, channels[0].length, fmt.sampleRate);
    channels.forEach((data, c) => buffer.copyToChannel(data, c));
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(ctx.destination);
    const at = Math.max(nextTime, ctx.currentTime + 0.05);
    src.start(at);
    nextTime = at + buffer.duration;
    seconds += buffer.duration;
    if (firstAudioMs === undefined) firstAudioMs = performance.now() - started;
    if (onProgress) onProgress({ seconds, firstAudioMs });
  };

  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!fmt) {
      head = concat([head, value]);
      const h = parseWavHeader(head);
      if (!h) continue;
      fmt = h;
      schedule(head.subarray(h.dataOffset));
      head = new Uint8Array(0);
    } else {
      schedule(value);
    }
  }
  if (!fmt) throw new Error('the stream ended before a complete WAV header');
  const pcm = concat(pcmParts, pcmBytes);
  const blob = buildWav(pcm, { sampleRate: fmt.sampleRate, channels: fmt.channels, bits: fmt.bits, format: fmt.format });
  return { blob, seconds, sampleRate: fmt.sampleRate, firstAudioMs };
}

/** A playable WAV blob from a non-streamed audio response (raw PCM gets a header). */
export function playableBlob(bytes, contentType) {
  if (/audio\/(pcm|l16)/i.test(contentType || '')) {
    return buildWav(bytes, { sampleRate: pcmRate(contentType) || 24000 });
  }
  return new Blob([bytes], { type: (contentType || 'audio/wav').split(';')[0] });
}
