// Loads a GGUF in llama.cpp (node-llama-cpp's prebuilt CPU binaries) and generates greedily.
//   node check.mjs FILE.gguf --tokens 299,12,34 --max-new 16 [--context 4096] [--text "..."]
// Prints one JSON line: the file's metadata llama.cpp read, the generated token ids and their text,
// and, with --text, llama.cpp's own tokenization of that text (special tokens parsed, no BOS added).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function flag(name, fallback) {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : fallback;
}

const file = process.argv[2];
const prompt = flag("--tokens", "").split(",").filter((s) => s.length > 0).map(Number);
const maxNew = Number(flag("--max-new", "16"));
const contextSize = Number(flag("--context", "4096"));
const text = flag("--text", null);

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: file, gpuLayers: 0});
const context = await model.createContext({contextSize, batchSize: Math.min(contextSize, 512), threads: 2});
const sequence = context.getSequence();

const generated = [];
if (prompt.length > 0) {
    for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
        if (model.isEogToken(token)) break; // as tenfold, which stops before an end-of-generation token
        generated.push(token);
        if (generated.length >= maxNew) break;
    }
}
const out = {
    trainContextSize: model.trainContextSize,
    vocabularyType: model.vocabularyType,
    bos: model.tokens.bos,
    eos: model.tokens.eos,
    eot: model.tokens.eot,
    chatTemplate: model.fileInfo.metadata?.tokenizer?.chat_template ?? null,
    tokens: generated,
    text: model.detokenize(generated, false),
};
if (text !== null) out.tokenized = model.tokenize(text, true);
console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
await llama.dispose();
