package dev.tenfold.qlora.data;

import dev.tenfold.engine.io.TextFiles;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.RecordParser.Bad;
import dev.tenfold.qlora.data.RecordParser.Kept;
import dev.tenfold.qlora.data.RecordParser.Kind;
import dev.tenfold.qlora.data.RecordParser.NoLabels;
import dev.tenfold.qlora.data.RecordParser.Outcome;
import dev.tenfold.qlora.data.RecordParser.TooLong;
import dev.tenfold.qlora.data.RecordParser.Unusable;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Training records read from JSON-lines files, one record per line, the files one after another.
 *
 * <p>Each non-blank line is one of:
 * <ul>
 * <li>{@code {"text": "..."}}: plain language modelling, &lt;|begin_of_text|&gt; + tokens +
 *     &lt;|end_of_text|&gt;, labels = input ids; longer than max_length: cut to max_length.</li>
 * <li>{@code {"conversations": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}}
 *     (or {@code "messages"}): the Llama-3 chat template without a generation prompt, loss on every
 *     assistant message's content and its &lt;|eot_id|&gt;; longer than max_length: dropped.</li>
 * <li>{@code {"input_ids": [...], "labels": [...]}}: pre-tokenized, labels optional (default the
 *     ids), every id checked against the vocabulary; longer than max_length: cut.</li>
 * </ul>
 * Records left with nothing to learn (every target -100) are dropped. A bad line is an
 * {@link IllegalArgumentException} "FILE:LINE: what is wrong", or, with
 * {@link Options#skipBadLines(boolean)}, skipped and counted in the {@link Report}.
 *
 * <p>Files are streamed line by line; lines are parsed and tokenized on worker threads in chunks,
 * and the results are taken back in file order, so the records and the report do not depend on
 * the number of threads.
 */
public final class JsonlDataset {

    /** Loading options; a fresh instance has no length limit, fails on bad lines, tokenizer vocab. */
    public static final class Options {
        private int maxLength = Integer.MAX_VALUE;
        private boolean skipBadLines;
        private int vocabSize; // 0: the tokenizer's
        private int threads = Math.min(8, Runtime.getRuntime().availableProcessors());
        private int badLinesListed = 5;

        /** No length limit, bad lines refused, the tokenizer's vocabulary, up to 8 tokenizer threads. */
        public Options() {}

        /** max_length in tokens: text and input_ids records are cut to it, chat records longer are dropped. */
        public Options maxLength(int tokens) {
            if (tokens < 1) throw new IllegalArgumentException("maxLength " + tokens + " < 1");
            maxLength = tokens;
            return this;
        }

        /** Skip and count bad lines instead of failing on the first one. */
        public Options skipBadLines(boolean skip) {
            skipBadLines = skip;
            return this;
        }

        /**
         * The model's vocabulary size (embedding rows), against which input_ids are checked; at least
         * the tokenizer's (which is the default).
         */
        public Options vocabSize(int size) {
            if (size < 1) throw new IllegalArgumentException("vocabSize " + size + " < 1");
            vocabSize = size;
            return this;
        }

        /** Tokenizer threads (1: all on the calling thread). */
        public Options threads(int n) {
            if (n < 1) throw new IllegalArgumentException("threads " + n + " < 1");
            threads = n;
            return this;
        }

        /** How many skipped lines the report names with their reason. */
        public Options badLinesListed(int n) {
            if (n < 0) throw new IllegalArgumentException("badLinesListed " + n + " < 0");
            badLinesListed = n;
            return this;
        }

        public int maxLength() {
            return maxLength;
        }

        public boolean skipBadLines() {
            return skipBadLines;
        }

        public int threads() {
            return threads;
        }
    }

    /** Per file: non-blank lines read, and records kept from them. */
    public record FileStats(String file, int read, int kept) {}

    /**
     * What loading did. Token counts are over the kept records; "target tokens" are the positions
     * that carry a loss (targets that are not -100).
     */
    public record Report(List<FileStats> files, int lengthLimit,
                         int kept, int keptText, int keptChat, int keptTokens,
                         int truncated, int droppedTooLong, int droppedNoLabels,
                         int badSkipped, List<String> badLines,
                         long totalTokens, long targetTokens, int maxLength, double meanLength) {
        public Report {
            files = List.copyOf(files);
            badLines = List.copyOf(badLines);
        }

        /** Records read in all files (non-blank lines, bad ones included). */
        public int read() {
            int n = 0;
            for (FileStats f : files) n += f.read();
            return n;
        }

        /** A few lines for people. */
        public String summary() {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%,d records read from %d file%s, %,d kept (%,d text, %,d chat, %,d input_ids)%n",
                    read(), files.size(), files.size() == 1 ? "" : "s", kept, keptText, keptChat, keptTokens));
            for (FileStats f : files) {
                sb.append(String.format(Locale.ROOT, "  %s: %,d read, %,d kept%n", f.file(), f.read(), f.kept()));
            }
            String limit = lengthLimit == Integer.MAX_VALUE ? "none" : String.format(Locale.ROOT, "%,d", lengthLimit);
            sb.append(String.format(Locale.ROOT, "  max_length %s: %,d truncated, %,d chat dropped as too long%n",
                    limit, truncated, droppedTooLong));
            sb.append(String.format(Locale.ROOT, "  dropped with no label: %,d; bad lines skipped: %,d%n",
                    droppedNoLabels, badSkipped));
            sb.append(String.format(Locale.ROOT, "  tokens %,d, with loss %,d (%.1f%%); length max %,d, mean %.1f",
                    totalTokens, targetTokens, totalTokens == 0 ? 0.0 : 100.0 * targetTokens / totalTokens,
                    maxLength, meanLength));
            if (!badLines.isEmpty()) {
                sb.append(String.format(Locale.ROOT, "%n  bad lines (first %d of %,d):", badLines.size(), badSkipped));
                for (String b : badLines) sb.append("\n    ").append(b);
            }
            return sb.toString();
        }

        @Override
        public String toString() {
            return summary();
        }
    }

    private final List<TrainingRecord> records;
    private final Report report;

    private JsonlDataset(List<TrainingRecord> records, Report report) {
        this.records = Collections.unmodifiableList(records);
        this.report = report;
    }

    public static JsonlDataset load(Tokenizer tokenizer, Options options, Path... files) throws IOException {
        return load(tokenizer, options, List.of(files));
    }

    /**
     * Reads the files in order. Fails before reading anything if a file is missing; fails on the
     * first bad line unless bad lines are skipped.
     *
     * <p>The tokenizer is needed only by the records that use it: it may be null when every record
     * is pre-tokenized (then {@link Options#vocabSize} must be given). A text or chat record that
     * the tokenizer cannot handle (none given, or one without the special tokens that the record's
     * shape needs) fails the load, whether or not bad lines are skipped: it is not a bad line but
     * data this tokenizer cannot be trained on.
     */
    public static JsonlDataset load(Tokenizer tokenizer, Options options, List<Path> files) throws IOException {
        Objects.requireNonNull(options, "options");
        if (files.isEmpty()) throw new IllegalArgumentException("no training data files given");
        for (Path f : files) {
            if (!Files.exists(f)) throw new NoSuchFileException(f.toString(), null, "training data file not found");
            if (!Files.isRegularFile(f)) throw new IllegalArgumentException(f + ": not a file");
        }
        if (tokenizer == null && options.vocabSize == 0) {
            throw new IllegalArgumentException("without a tokenizer, give the model's vocabulary size (Options.vocabSize) to check input_ids against");
        }
        int vocab = options.vocabSize == 0 ? tokenizer.vocabSize() : options.vocabSize;
        if (tokenizer != null && vocab < tokenizer.vocabSize()) {
            throw new IllegalArgumentException("vocabSize " + vocab + " is smaller than the tokenizer's "
                    + tokenizer.vocabSize() + " (" + tokenizer.source() + ")");
        }
        try (Loader loader = new Loader(new RecordParser(tokenizer, vocab, options.maxLength), options, files)) {
            return loader.run();
        }
    }

    /** The records in file order. Read-only. */
    public List<TrainingRecord> records() {
        return records;
    }

    public TrainingRecord get(int index) {
        return records.get(index);
    }

    public int size() {
        return records.size();
    }

    /** Each record's length in tokens, for {@link LengthGroupedBatches}. */
    public int[] lengths() {
        int[] out = new int[records.size()];
        for (int i = 0; i < out.length; i++) out[i] = records.get(i).length();
        return out;
    }

    public Report report() {
        return report;
    }

    // ------------------------------------------------------------------------------------------

    /** One line waiting to be parsed. */
    private record Line(int file, int number, byte[] bytes) {}

    /** The streaming loop: reads chunks of lines, parses them (maybe in parallel), tallies in order. */
    private static final class Loader implements AutoCloseable {
        // A chunk is a unit of work: big enough to amortize the hand-off, small enough to spread
        // a few long records over the threads.
        private static final int CHUNK_LINES = 64;
        private static final int CHUNK_BYTES = 1 << 20;

        private final RecordParser parser;
        private final Options options;
        private final List<Path> files;
        private final String[] names;
        private final ExecutorService pool;
        private final ArrayDeque<Future<List<Outcome>>> inFlight = new ArrayDeque<>();
        private final ArrayDeque<List<Line>> inFlightLines = new ArrayDeque<>();

        private final List<TrainingRecord> records = new ArrayList<>();
        private final int[] read;
        private final int[] keptPerFile;
        private final int[] keptPerKind = new int[Kind.values().length];
        private int truncated;
        private int droppedTooLong;
        private int droppedNoLabels;
        private int badSkipped;
        private final List<String> badLines = new ArrayList<>();
        private long totalTokens;
        private long targetTokens;
        private int maxLength;

        Loader(RecordParser parser, Options options, List<Path> files) {
            this.parser = parser;
            this.options = options;
            this.files = files;
            names = new String[files.size()];
            for (int i = 0; i < names.length; i++) names[i] = files.get(i).toString();
            read = new int[files.size()];
            keptPerFile = new int[files.size()];
            pool = options.threads > 1
                    ? Executors.newFixedThreadPool(options.threads, Thread.ofPlatform().daemon().name("jsonl-", 0).factory())
                    : null;
        }

        JsonlDataset run() throws IOException {
            for (int f = 0; f < files.size(); f++) {
                try (Utf8LineReader lines = new Utf8LineReader(Files.newInputStream(files.get(f)))) {
                    List<Line> chunk = new ArrayList<>();
                    long chunkBytes = 0;
                    byte[] bytes;
                    while ((bytes = lines.next()) != null) {
                        if (isBlank(bytes)) continue;
                        read[f]++;
                        chunk.add(new Line(f, lines.lineNumber(), bytes));
                        chunkBytes += bytes.length;
                        if (chunk.size() >= CHUNK_LINES || chunkBytes >= CHUNK_BYTES) {
                            submit(chunk);
                            chunk = new ArrayList<>();
                            chunkBytes = 0;
                        }
                    }
                    if (!chunk.isEmpty()) submit(chunk);
                }
            }
            while (!inFlight.isEmpty()) takeOldest();

            int kept = records.size();
            Report report = new Report(fileStats(), options.maxLength, kept,
                    keptPerKind[Kind.TEXT.ordinal()], keptPerKind[Kind.CHAT.ordinal()], keptPerKind[Kind.TOKENS.ordinal()],
                    truncated, droppedTooLong, droppedNoLabels, badSkipped, badLines,
                    totalTokens, targetTokens, maxLength, kept == 0 ? 0.0 : (double) totalTokens / kept);
            return new JsonlDataset(records, report);
        }

        private List<FileStats> fileStats() {
            List<FileStats> out = new ArrayList<>();
            for (int f = 0; f < names.length; f++) out.add(new FileStats(names[f], read[f], keptPerFile[f]));
            return out;
        }

        private void submit(List<Line> chunk) {
            if (pool == null) {
                tally(chunk, parseAll(chunk));
                return;
            }
            inFlight.add(pool.submit(() -> parseAll(chunk)));
            inFlightLines.add(chunk);
            // Bound the lines held in memory: wait for the oldest chunk once enough are queued.
            while (inFlight.size() > 2 * options.threads) takeOldest();
        }

        private void takeOldest() {
            List<Line> chunk = inFlightLines.poll();
            try {
                tally(chunk, inFlight.poll().get());
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException r) throw r;
                if (e.getCause() instanceof Error err) throw err;
                throw new IllegalStateException(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while loading training data", e);
            }
        }

        private List<Outcome> parseAll(List<Line> chunk) {
            List<Outcome> out = new ArrayList<>(chunk.size());
            for (Line line : chunk) {
                String source = names[line.file()] + ":" + line.number();
                try {
                    out.add(parseLine(line, source));
                } catch (RuntimeException e) {
                    // Not a data error (those are Bad outcomes): a bug; say where it happened.
                    throw new IllegalStateException(source + ": " + e, e);
                }
            }
            return out;
        }

        private Outcome parseLine(Line line, String source) {
            String text;
            try {
                text = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(line.bytes())).toString();
            } catch (CharacterCodingException e) {
                return new Bad("not valid UTF-8 at byte " + TextFiles.firstInvalidUtf8(line.bytes(), 0, line.bytes().length)
                        + " of the line; save the file as UTF-8");
            }
            if (line.number() == 1 && text.startsWith("\uFEFF")) text = text.substring(1); // a byte-order mark
            return parser.parse(text, source);
        }

        /** Takes one chunk's outcomes into the tally, in order; the first bad line fails unless skipped. */
        private void tally(List<Line> chunk, List<Outcome> outcomes) {
            for (int i = 0; i < outcomes.size(); i++) {
                Line line = chunk.get(i);
                switch (outcomes.get(i)) {
                    case Kept k -> {
                        TrainingRecord r = k.record();
                        records.add(r);
                        keptPerFile[line.file()]++;
                        keptPerKind[k.kind().ordinal()]++;
                        if (k.truncated()) truncated++;
                        totalTokens += r.length();
                        targetTokens += r.targetCount();
                        maxLength = Math.max(maxLength, r.length());
                    }
                    case TooLong _ -> droppedTooLong++;
                    case NoLabels _ -> droppedNoLabels++;
                    case Unusable u -> throw new IllegalArgumentException(names[line.file()] + ":" + line.number() + ": " + u.reason());
                    case Bad b -> {
                        String message = names[line.file()] + ":" + line.number() + ": " + b.reason();
                        if (!options.skipBadLines) throw new IllegalArgumentException(message);
                        badSkipped++;
                        if (badLines.size() < options.badLinesListed) badLines.add(message);
                    }
                }
            }
        }

        private static boolean isBlank(byte[] line) {
            for (byte b : line) if (b != ' ' && b != '\t' && b != '\r') return false;
            return true;
        }

        @Override
        public void close() {
            if (pool != null) pool.shutdownNow(); // after a failure, queued chunks are not wanted
        }
    }
}
