import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import {
    GgmlType,
    GgufValueType,
    Q8_0_BLOCK_BYTES,
    dequantizeQ8_0,
    float16BitsToFloat32,
    float32ToFloat16Bits,
    gguf,
    quantizeQ8_0,
    writeGguf,
    type GgufKv
} from "../../bench/gguf/gguf-writer.js";
import { readGgufMetadata } from "../../bench/gguf/gguf-reader.js";

const KV: GgufKv[] = [
    { key: "general.architecture", value: gguf.str("llama") },
    { key: "general.alignment", value: gguf.u32(32) },
    { key: "t.u8", value: gguf.u8(200) },
    { key: "t.i8", value: gguf.i8(-100) },
    { key: "t.u16", value: gguf.u16(60000) },
    { key: "t.i16", value: gguf.i16(-30000) },
    { key: "t.i32", value: gguf.i32(-123456) },
    { key: "t.f32", value: gguf.f32(0.5) },
    { key: "t.f64", value: gguf.f64(1e-300) },
    { key: "t.bool", value: gguf.bool(true) },
    { key: "t.u64", value: gguf.u64(2n ** 40n) },
    { key: "t.i64", value: gguf.i64(-(2n ** 40n)) },
    { key: "t.str", value: gguf.str("héllo ▁world") },
    { key: "t.strs", value: gguf.arr(GgufValueType.STRING, ["<s>", "", "☃"]) },
    { key: "t.f32s", value: gguf.arr(GgufValueType.FLOAT32, [0.25, -1.5]) },
    { key: "t.i32s", value: gguf.arr(GgufValueType.INT32, [1, -2, 3]) }
];

const F32_DATA = new Float32Array([1, 2, 3, 4, 5, 6, 7, -8]); // dims [4, 2]
const Q8_SOURCE = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i) * 0.1); // dims [64, 2]

test("writeGguf output is read back by node-llama-cpp's readGgufFileInfo", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gguf-writer-"));
    try {
        const path = join(dir, "tiny.gguf");
        const q8 = quantizeQ8_0(Q8_SOURCE);
        await writeGguf(path, {
            kv: KV,
            tensors: [
                { name: "a.weight", dims: [4, 2], type: GgmlType.F32, data: () => [new Uint8Array(F32_DATA.buffer)] },
                // split into two chunks to exercise streaming
                { name: "b.weight", dims: [64, 2], type: GgmlType.Q8_0, data: () => [q8.subarray(0, 34), q8.subarray(34)] }
            ]
        });

        const info = await readGgufFileInfo(path, { logWarnings: false });
        assert.equal(info.version, 3);
        assert.equal(Number(info.tensorCount), 2);
        const t = (info.metadata as unknown as Record<string, Record<string, unknown>>).t;
        assert.equal(info.metadata.general.architecture, "llama");
        assert.equal(t.u8, 200);
        assert.equal(t.i8, -100);
        assert.equal(t.u16, 60000);
        assert.equal(t.i16, -30000);
        assert.equal(t.i32, -123456);
        assert.equal(t.f32, 0.5);
        assert.equal(t.f64, 1e-300);
        assert.equal(t.bool, true);
        assert.equal(t.u64, 2n ** 40n);
        assert.equal(t.i64, -(2n ** 40n));
        assert.equal(t.str, "héllo ▁world");
        assert.deepEqual(t.strs, ["<s>", "", "☃"]);
        assert.deepEqual(t.f32s, [0.25, -1.5]);
        assert.deepEqual(t.i32s, [1, -2, 3]);

        const tensors = info.tensorInfo ?? [];
        assert.deepEqual(tensors.map((x) => [x.name, x.dimensions.map(Number), x.ggmlType, Number(x.offset)]), [
            ["a.weight", [4, 2], GgmlType.F32, 0],
            ["b.weight", [64, 2], GgmlType.Q8_0, 32] // 32 bytes of F32 data, already aligned
        ]);

        const file = await readFile(path);
        const a = tensors[0];
        const b = tensors[1];
        assert.equal(Number(a.fileOffset) % 32, 0);
        assert.deepEqual(new Float32Array(file.buffer.slice(
            file.byteOffset + Number(a.fileOffset), file.byteOffset + Number(a.fileOffset) + 32)), F32_DATA);
        assert.deepEqual(file.subarray(Number(b.fileOffset), Number(b.fileOffset) + 4 * Q8_0_BLOCK_BYTES), q8);
        assert.equal(file.length, Number(b.fileOffset) + 4 * Q8_0_BLOCK_BYTES + 32 - ((4 * Q8_0_BLOCK_BYTES) % 32));

        // our own reader keeps the exact value types
        const md = readGgufMetadata(path);
        assert.equal(md.tensorCount, 2n);
        assert.deepEqual(md.kv.map((e) => e.key), KV.map((e) => e.key));
        assert.deepEqual(md.kv.find((e) => e.key === "t.f32s")?.value,
            { type: GgufValueType.ARRAY, elementType: GgufValueType.FLOAT32, value: [0.25, -1.5] });
        assert.deepEqual(md.kv.find((e) => e.key === "t.u16")?.value, { type: GgufValueType.UINT16, value: 60000 });
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

test("writeGguf rejects tensor data of the wrong size and leaves no file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gguf-writer-"));
    try {
        const path = join(dir, "bad.gguf");
        await assert.rejects(writeGguf(path, {
            kv: [],
            tensors: [{ name: "x", dims: [4], type: GgmlType.F32, data: () => [new Uint8Array(12)] }]
        }), /expected 16/);
        await assert.rejects(readFile(path), { code: "ENOENT" });
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
});

test("Q8_0 block encoding round-trips within half a quantization step", () => {
    const q8 = quantizeQ8_0(Q8_SOURCE);
    assert.equal(q8.length, (Q8_SOURCE.length / 32) * Q8_0_BLOCK_BYTES);
    const back = dequantizeQ8_0(q8);
    for (let b = 0; b < Q8_SOURCE.length / 32; b++) {
        const block = Q8_SOURCE.subarray(b * 32, b * 32 + 32);
        const amax = Math.max(...Array.from(block, Math.abs));
        const d = float16BitsToFloat32(q8.readUInt16LE(b * Q8_0_BLOCK_BYTES));
        assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 1e-3, `block ${b}: scale ${d} vs ${amax / 127}`);
        // the largest magnitude maps to ±127
        assert.equal(Math.max(...Array.from(q8.subarray(b * 34 + 2, b * 34 + 34), (v) => Math.abs((v << 24) >> 24))), 127);
        for (let j = 0; j < 32; j++) {
            assert.ok(Math.abs(back[b * 32 + j] - block[j]) <= d * 0.5 + amax * 1e-3, `value ${b * 32 + j}`);
        }
    }
    // an all-zero block encodes as d = 0 and zero quants
    assert.deepEqual(quantizeQ8_0(new Float32Array(32)), Buffer.alloc(Q8_0_BLOCK_BYTES));
});

test("float16 conversion rounds to nearest even and handles edge cases", () => {
    assert.equal(float32ToFloat16Bits(1), 0x3c00);
    assert.equal(float32ToFloat16Bits(-2), 0xc000);
    assert.equal(float32ToFloat16Bits(65504), 0x7bff);
    assert.equal(float32ToFloat16Bits(1e6), 0x7c00);
    assert.equal(float32ToFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(float32ToFloat16Bits(2 ** -26), 0x0000); // below half of it
    assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
    assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
    for (const v of [0.02 / 127, 0.1, -3.25, 6.1e-5, 1e-7]) {
        const r = float16BitsToFloat32(float32ToFloat16Bits(v));
        assert.ok(Math.abs(r - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25), `${v} -> ${r}`);
    }
});
