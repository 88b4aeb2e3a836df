/**
 * Minimal GGUF (v2/v3) metadata reader that keeps each value's exact GGUF type, so
 * key/value pairs can be copied into another file unchanged (e.g. the tokenizer keys).
 * Only the header and the kv section are read; tensor infos and data are skipped.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { GGUF_MAGIC, GgufValueType, type GgufKv, type GgufScalar, type GgufScalarType, type GgufValue } from "./gguf-writer.js";

export interface GgufMetadata {
    version: number;
    tensorCount: bigint;
    kv: GgufKv[];
}

/** Sequential little-endian reader over a file descriptor, refilled in chunks (default 1 MiB). */
class FileCursor {
    private buf = Buffer.alloc(0);
    private bufPos = 0; // read position inside buf
    private filePos = 0; // file offset of the byte after buf's end

    constructor(private readonly fd: number, private readonly chunkSize = 1 << 20) {}

    /** Makes at least `n` unread bytes available in `buf` from `bufPos`, or throws at EOF. */
    private ensure(n: number): void {
        const available = this.buf.length - this.bufPos;
        if (available >= n) return;
        const next = Buffer.alloc(Math.max(n, this.chunkSize));
        this.buf.copy(next, 0, this.bufPos);
        let filled = available;
        while (filled < n) {
            const read = readSync(this.fd, next, filled, next.length - filled, this.filePos);
            if (read === 0) throw new Error("unexpected end of GGUF file");
            filled += read;
            this.filePos += read;
        }
        this.buf = next.subarray(0, filled);
        this.bufPos = 0;
    }

    private take(n: number): number {
        this.ensure(n);
        const at = this.bufPos;
        this.bufPos += n;
        return at;
    }

    u8(): number { return this.buf.readUInt8(this.take(1)); }
    i8(): number { return this.buf.readInt8(this.take(1)); }
    u16(): number { return this.buf.readUInt16LE(this.take(2)); }
    i16(): number { return this.buf.readInt16LE(this.take(2)); }
    u32(): number { return this.buf.readUInt32LE(this.take(4)); }
    i32(): number { return this.buf.readInt32LE(this.take(4)); }
    f32(): number { return this.buf.readFloatLE(this.take(4)); }
    f64(): number { return this.buf.readDoubleLE(this.take(8)); }
    u64(): bigint { return this.buf.readBigUInt64LE(this.take(8)); }
    i64(): bigint { return this.buf.readBigInt64LE(this.take(8)); }

    /** Raw bytes as a string in the given encoding. */
    text(n: number, encoding: BufferEncoding): string {
        const at = this.take(n);
        return this.buf.toString(encoding, at, at + n);
    }

    /** GGUF string: u64 byte length + UTF-8 bytes. */
    string(): string {
        return this.text(toSafeNumber(this.u64(), "string length"), "utf8");
    }
}

function toSafeNumber(v: bigint, what: string): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`GGUF ${what} too large: ${v}`);
    return Number(v);
}

function readScalar(c: FileCursor, type: GgufScalarType): GgufScalar {
    switch (type) {
        case GgufValueType.UINT8: return c.u8();
        case GgufValueType.INT8: return c.i8();
        case GgufValueType.UINT16: return c.u16();
        case GgufValueType.INT16: return c.i16();
        case GgufValueType.UINT32: return c.u32();
        case GgufValueType.INT32: return c.i32();
        case GgufValueType.FLOAT32: return c.f32();
        case GgufValueType.FLOAT64: return c.f64();
        case GgufValueType.BOOL: return c.u8() !== 0;
        case GgufValueType.STRING: return c.string();
        case GgufValueType.UINT64: return c.u64();
        case GgufValueType.INT64: return c.i64();
        default: throw new Error(`unsupported GGUF value type ${String(type)}`);
    }
}

function readValue(c: FileCursor): GgufValue {
    const type = c.u32() as GgufValueType;
    if (type !== GgufValueType.ARRAY) return { type, value: readScalar(c, type) };
    const elementType = c.u32() as GgufValueType;
    if (elementType === GgufValueType.ARRAY) throw new Error("nested GGUF arrays are not supported");
    const count = toSafeNumber(c.u64(), "array length");
    const value: GgufScalar[] = new Array<GgufScalar>(count);
    for (let i = 0; i < count; i++) value[i] = readScalar(c, elementType);
    return { type, elementType, value };
}

/** Reads the GGUF header and all kv pairs of `path`, in file order, with their exact types. */
export function readGgufMetadata(path: string): GgufMetadata {
    const fd = openSync(path, "r");
    try {
        const c = new FileCursor(fd);
        const magic = c.text(4, "latin1");
        if (magic !== GGUF_MAGIC) throw new Error(`${path}: not a GGUF file (magic ${JSON.stringify(magic)})`);
        const version = c.u32();
        if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
        const tensorCount = c.u64();
        const kvCount = toSafeNumber(c.u64(), "kv count");
        const kv: GgufKv[] = [];
        for (let i = 0; i < kvCount; i++) {
            const key = c.string();
            kv.push({ key, value: readValue(c) });
        }
        return { version, tensorCount, kv };
    } finally {
        closeSync(fd);
    }
}
