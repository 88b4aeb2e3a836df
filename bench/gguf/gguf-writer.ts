/**
 * Minimal GGUF v3 writer (little-endian), enough to build llama.cpp models.
 *
 * File layout written by `writeGguf`:
 *   magic "GGUF" | version u32 (=3) | tensor count u64 | kv count u64
 *   kv pairs      (key: string, value type: u32, value)
 *   tensor infos  (name: string, n_dims u32, dims u64 x n_dims (ne0 first), ggml type u32,
 *                  offset u64 relative to the start of the data section, multiple of the alignment)
 *   zero padding up to the alignment
 *   data section  (each tensor's bytes, zero-padded to the alignment)
 * A GGUF string is a u64 byte length followed by UTF-8 bytes (no terminator).
 */
import { open, rename, rm } from "node:fs/promises";

/** GGUF metadata value types (numeric ids as stored in the file). */
export enum GgufValueType {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12
}

/** ggml tensor types supported by this writer. */
export enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q8_0 = 8
}

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;
/** JS representation: number for 8..32-bit ints and floats, bigint for 64-bit ints. */
export type GgufScalar = number | bigint | boolean | string;

/** A typed metadata value; the type is kept so values round-trip exactly. */
export type GgufValue =
    | { type: GgufScalarType; value: GgufScalar }
    | { type: GgufValueType.ARRAY; elementType: GgufScalarType; value: readonly GgufScalar[] };

export interface GgufKv {
    key: string;
    value: GgufValue;
}

/** Convenience constructors for typed metadata values. */
export const gguf = {
    u8: (value: number): GgufValue => ({ type: GgufValueType.UINT8, value }),
    i8: (value: number): GgufValue => ({ type: GgufValueType.INT8, value }),
    u16: (value: number): GgufValue => ({ type: GgufValueType.UINT16, value }),
    i16: (value: number): GgufValue => ({ type: GgufValueType.INT16, value }),
    u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
    i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
    f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
    f64: (value: number): GgufValue => ({ type: GgufValueType.FLOAT64, value }),
    u64: (value: bigint): GgufValue => ({ type: GgufValueType.UINT64, value }),
    i64: (value: bigint): GgufValue => ({ type: GgufValueType.INT64, value }),
    bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
    str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
    arr: (elementType: GgufScalarType, value: readonly GgufScalar[]): GgufValue =>
        ({ type: GgufValueType.ARRAY, elementType, value })
};

/** Byte width of fixed-size scalar types (strings are variable-length). */
const SCALAR_SIZE: Readonly<Record<Exclude<GgufScalarType, GgufValueType.STRING>, number>> = {
    [GgufValueType.UINT8]: 1,
    [GgufValueType.INT8]: 1,
    [GgufValueType.UINT16]: 2,
    [GgufValueType.INT16]: 2,
    [GgufValueType.UINT32]: 4,
    [GgufValueType.INT32]: 4,
    [GgufValueType.FLOAT32]: 4,
    [GgufValueType.BOOL]: 1,
    [GgufValueType.UINT64]: 8,
    [GgufValueType.INT64]: 8,
    [GgufValueType.FLOAT64]: 8
};

export const GGUF_MAGIC = "GGUF";
export const GGUF_VERSION = 3;
/** Default data alignment in bytes (also what llama.cpp assumes without `general.alignment`). */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Q8_0: blocks of 32 values, each stored as an f16 scale `d` followed by 32 int8 quants. */
export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_VALUES;

/** Rounds `n` up to a multiple of `alignment` (bytes). */
export function alignUp(n: number, alignment: number): number {
    return Math.ceil(n / alignment) * alignment;
}

/** Growable little-endian byte buffer used to assemble the header. */
export class ByteWriter {
    private buf = Buffer.alloc(64 * 1024);
    private pos = 0;

    get length(): number {
        return this.pos;
    }

    /** Returns a copy-free view of the bytes written so far. */
    toBuffer(): Buffer {
        return this.buf.subarray(0, this.pos);
    }

    /** Grows the buffer if needed and returns the offset of `n` newly claimed bytes.
     *  Call it before reading `this.buf`: it may replace the buffer. */
    private reserve(n: number): number {
        if (this.pos + n > this.buf.length) {
            const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
            this.buf.copy(next, 0, 0, this.pos);
            this.buf = next;
        }
        const at = this.pos;
        this.pos += n;
        return at;
    }

    u8(v: number): void { const at = this.reserve(1); this.buf.writeUInt8(v, at); }
    i8(v: number): void { const at = this.reserve(1); this.buf.writeInt8(v, at); }
    u16(v: number): void { const at = this.reserve(2); this.buf.writeUInt16LE(v, at); }
    i16(v: number): void { const at = this.reserve(2); this.buf.writeInt16LE(v, at); }
    u32(v: number): void { const at = this.reserve(4); this.buf.writeUInt32LE(v, at); }
    i32(v: number): void { const at = this.reserve(4); this.buf.writeInt32LE(v, at); }
    f32(v: number): void { const at = this.reserve(4); this.buf.writeFloatLE(v, at); }
    f64(v: number): void { const at = this.reserve(8); this.buf.writeDoubleLE(v, at); }
    u64(v: bigint | number): void { const at = this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), at); }
    i64(v: bigint | number): void { const at = this.reserve(8); this.buf.writeBigInt64LE(BigInt(v), at); }
    bytes(b: Uint8Array): void { const at = this.reserve(b.length); this.buf.set(b, at); }

    /** GGUF string: u64 byte length + UTF-8 bytes. */
    string(s: string): void {
        const b = Buffer.from(s, "utf8");
        this.u64(b.length);
        this.bytes(b);
    }

    /** Zero bytes up to a multiple of `alignment`. */
    padTo(alignment: number): void {
        const at = this.reserve(alignUp(this.pos, alignment) - this.pos);
        this.buf.fill(0, at, this.pos);
    }
}

function expectNumber(v: GgufScalar, type: GgufScalarType): number {
    if (typeof v !== "number") throw new TypeError(`GGUF type ${GgufValueType[type]} expects a number, got ${typeof v}`);
    return v;
}

/** Writes one scalar of the given type (no type tag). */
export function writeScalar(w: ByteWriter, type: GgufScalarType, v: GgufScalar): void {
    switch (type) {
        case GgufValueType.UINT8: return w.u8(expectNumber(v, type));
        case GgufValueType.INT8: return w.i8(expectNumber(v, type));
        case GgufValueType.UINT16: return w.u16(expectNumber(v, type));
        case GgufValueType.INT16: return w.i16(expectNumber(v, type));
        case GgufValueType.UINT32: return w.u32(expectNumber(v, type));
        case GgufValueType.INT32: return w.i32(expectNumber(v, type));
        case GgufValueType.FLOAT32: return w.f32(expectNumber(v, type));
        case GgufValueType.FLOAT64: return w.f64(expectNumber(v, type));
        case GgufValueType.BOOL:
            if (typeof v !== "boolean") throw new TypeError(`GGUF BOOL expects a boolean, got ${typeof v}`);
            return w.u8(v ? 1 : 0);
        case GgufValueType.STRING:
            if (typeof v !== "string") throw new TypeError(`GGUF STRING expects a string, got ${typeof v}`);
            return w.string(v);
        case GgufValueType.UINT64:
        case GgufValueType.INT64:
            if (typeof v !== "bigint" && typeof v !== "number") {
                throw new TypeError(`GGUF ${GgufValueType[type]} expects a bigint, got ${typeof v}`);
            }
            return type === GgufValueType.UINT64 ? w.u64(v) : w.i64(v);
    }
}

/** Writes a typed value: type tag u32, then the value (arrays: elem type u32, count u64, elems). */
export function writeValue(w: ByteWriter, value: GgufValue): void {
    w.u32(value.type);
    if (value.type === GgufValueType.ARRAY) {
        w.u32(value.elementType);
        w.u64(value.value.length);
        for (const v of value.value) writeScalar(w, value.elementType, v);
    } else {
        writeScalar(w, value.type, value.value);
    }
}

/** Byte size of a scalar type; undefined for STRING. */
export function scalarSize(type: GgufScalarType): number | undefined {
    return type === GgufValueType.STRING ? undefined : SCALAR_SIZE[type];
}

/** Size in bytes of a tensor's data (without alignment padding). `dims` in ggml order, ne0 first. */
export function tensorByteSize(type: GgmlType, dims: readonly number[]): number {
    const n = dims.reduce((a, b) => a * b, 1);
    switch (type) {
        case GgmlType.F32: return n * 4;
        case GgmlType.F16: return n * 2;
        case GgmlType.Q8_0:
            if (dims[0] % Q8_0_BLOCK_VALUES !== 0) {
                throw new RangeError(`Q8_0 needs ne0 to be a multiple of ${Q8_0_BLOCK_VALUES}, got ${dims[0]}`);
            }
            return (n / Q8_0_BLOCK_VALUES) * Q8_0_BLOCK_BYTES;
    }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary32 -> binary16 bits, round-to-nearest-even (handles subnormals, inf, NaN). */
export function float32ToFloat16Bits(value: number): number {
    f32Scratch[0] = value;
    const x = u32Scratch[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
    const e = exp - 127 + 15; // biased half exponent
    if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
    if (e <= 0) {
        // half subnormal: value = m * 2^-24, m = (1.mant) * 2^(e - 14) in units of 2^-23
        if (e < -10) return sign;
        const full = mant | 0x800000;
        const shift = 14 - e;
        let m = full >>> shift;
        const rem = full & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && (m & 1) !== 0)) m++;
        return sign | m;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // carry may round up into inf: correct
    return sign | h;
}

/** IEEE 754 binary16 bits -> number. */
export function float16BitsToFloat32(h: number): number {
    const sign = (h & 0x8000) !== 0 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) return sign * mant * 2 ** -24;
    if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
    return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** C `roundf`: halves round away from zero. */
function roundHalfAwayFromZero(v: number): number {
    return v < 0 ? -Math.round(-v) : Math.round(v);
}

/**
 * Quantizes `values` (length a multiple of 32) to Q8_0 like ggml's quantize_row_q8_0_ref:
 * per block d = max|x| / 127 (stored as f16), q = roundf(x / d). Returns 34 bytes per block.
 */
export function quantizeQ8_0(values: ArrayLike<number>): Buffer {
    if (values.length % Q8_0_BLOCK_VALUES !== 0) {
        throw new RangeError(`Q8_0 input length must be a multiple of ${Q8_0_BLOCK_VALUES}, got ${values.length}`);
    }
    const nBlocks = values.length / Q8_0_BLOCK_VALUES;
    const out = Buffer.alloc(nBlocks * Q8_0_BLOCK_BYTES);
    for (let b = 0; b < nBlocks; b++) {
        const base = b * Q8_0_BLOCK_VALUES;
        let amax = 0;
        for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) amax = Math.max(amax, Math.abs(values[base + j]));
        const d = Math.fround(amax / 127);
        const id = d !== 0 ? 1 / d : 0;
        const o = b * Q8_0_BLOCK_BYTES;
        out.writeUInt16LE(float32ToFloat16Bits(d), o);
        for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
            out.writeInt8(roundHalfAwayFromZero(values[base + j] * id), o + 2 + j);
        }
    }
    return out;
}

/** Dequantizes Q8_0 bytes (34 per block) back to floats: x = f16(d) * q. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
    if (bytes.length % Q8_0_BLOCK_BYTES !== 0) {
        throw new RangeError(`Q8_0 data length must be a multiple of ${Q8_0_BLOCK_BYTES}, got ${bytes.length}`);
    }
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const nBlocks = bytes.length / Q8_0_BLOCK_BYTES;
    const out = new Float32Array(nBlocks * Q8_0_BLOCK_VALUES);
    for (let b = 0; b < nBlocks; b++) {
        const o = b * Q8_0_BLOCK_BYTES;
        const d = float16BitsToFloat32(buf.readUInt16LE(o));
        for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) out[b * Q8_0_BLOCK_VALUES + j] = d * buf.readInt8(o + 2 + j);
    }
    return out;
}

/** A tensor to write. Its data is produced lazily, in order, so large tensors can be streamed. */
export interface GgufTensorSpec {
    name: string;
    /** ggml dimension order: ne0 (contiguous, row length) first. */
    dims: readonly number[];
    type: GgmlType;
    /** Yields the raw tensor bytes in order; total must equal tensorByteSize(type, dims). */
    data: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

export interface GgufFileSpec {
    kv: readonly GgufKv[];
    tensors: readonly GgufTensorSpec[];
    /** Data alignment in bytes; must match `general.alignment` if that key is present. Default 32. */
    alignment?: number;
}

/**
 * Builds everything before the data section (header, kv, tensor infos, padding).
 * Returns the header bytes and each tensor's offset relative to the data section.
 */
export function buildGgufHeader(spec: GgufFileSpec): { header: Buffer; offsets: number[] } {
    const alignment = resolveAlignment(spec);
    const w = new ByteWriter();
    w.bytes(Buffer.from(GGUF_MAGIC, "ascii"));
    w.u32(GGUF_VERSION);
    w.u64(spec.tensors.length);
    w.u64(spec.kv.length);
    for (const { key, value } of spec.kv) {
        w.string(key);
        writeValue(w, value);
    }
    const offsets: number[] = [];
    let offset = 0;
    for (const t of spec.tensors) {
        w.string(t.name);
        w.u32(t.dims.length);
        for (const d of t.dims) w.u64(d);
        w.u32(t.type);
        w.u64(offset);
        offsets.push(offset);
        offset = alignUp(offset + tensorByteSize(t.type, t.dims), alignment);
    }
    w.padTo(alignment);
    return { header: w.toBuffer(), offsets };
}

function resolveAlignment(spec: GgufFileSpec): number {
    const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    const kv = spec.kv.find((e) => e.key === "general.alignment");
    if (kv !== undefined && kv.value.type !== GgufValueType.ARRAY && Number(kv.value.value) !== alignment) {
        throw new Error(`general.alignment (${String(kv.value.value)}) differs from the writer alignment (${alignment})`);
    }
    return alignment;
}

/**
 * Writes a GGUF file at `path`, streaming tensor data (only the current chunk is held in memory).
 * Writes to a temporary sibling first and renames it, so a partial file never appears at `path`.
 */
export async function writeGguf(path: string, spec: GgufFileSpec): Promise<void> {
    const alignment = resolveAlignment(spec);
    const { header } = buildGgufHeader(spec);
    const tmpPath = `${path}.tmp-${process.pid}`;
    const fh = await open(tmpPath, "w");
    try {
        await fh.write(header);
        for (const t of spec.tensors) {
            const expected = tensorByteSize(t.type, t.dims);
            let written = 0;
            for await (const chunk of t.data()) {
                written += chunk.length;
                if (written > expected) break;
                await fh.write(chunk);
            }
            if (written !== expected) {
                throw new Error(`tensor ${t.name}: data yielded ${written} bytes, expected ${expected}`);
            }
            const pad = alignUp(expected, alignment) - expected;
            if (pad > 0) await fh.write(Buffer.alloc(pad));
        }
        await fh.close();
        await rename(tmpPath, path);
    } catch (err) {
        await fh.close().catch(() => undefined);
        await rm(tmpPath, { force: true });
        throw err;
    }
}
