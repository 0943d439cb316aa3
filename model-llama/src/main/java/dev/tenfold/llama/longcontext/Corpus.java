package dev.tenfold.llama.longcontext;

import dev.tenfold.engine.io.TextFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A user's text cut into sentences, the unit synthetic contexts are filled with (so planted facts
 * always sit between whole sentences). Paragraph breaks (blank lines) are kept, so a context
 * built from the corpus keeps its paragraphs.
 */
public final class Corpus {
    // A blank line (possibly with spaces) separates paragraphs.
    private static final Pattern PARAGRAPH = Pattern.compile("\\n\\s*\\n");
    // A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) and whitespace.
    private static final Pattern SENTENCE_END = Pattern.compile("(?<=[.!?][\"')\\]\\u201D\\u2019]?)\\s+");
    private static final Pattern SPACES = Pattern.compile("\\s+");

    private final String source;
    private final List<String> sentences;
    private final boolean[] paragraphEnd;

    private Corpus(String source, List<String> sentences, boolean[] paragraphEnd) {
        this.source = source;
        this.sentences = List.copyOf(sentences);
        this.paragraphEnd = paragraphEnd;
    }

    /** Reads a UTF-8 text file (invalid UTF-8 is an error naming the file and the byte). */
    public static Corpus load(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("corpus " + file + ": not a file");
        return of(TextFiles.readUtf8(file), file.toString());
    }

    /** Splits text into paragraphs and sentences; fails if there is no text. */
    public static Corpus of(String text, String source) {
        List<String> sentences = new ArrayList<>();
        List<Boolean> ends = new ArrayList<>();
        for (String paragraph : PARAGRAPH.split(text.replace("\r\n", "\n"))) {
            String p = SPACES.matcher(paragraph).replaceAll(" ").strip();
            if (p.isEmpty()) continue;
            String[] parts = SENTENCE_END.split(p);
            for (int i = 0; i < parts.length; i++) {
                if (parts[i].isBlank()) continue;
                sentences.add(parts[i]);
                ends.add(i == parts.length - 1);
            }
        }
        if (sentences.isEmpty()) throw new IllegalArgumentException("corpus " + source + " has no text");
        boolean[] paragraphEnd = new boolean[ends.size()];
        for (int i = 0; i < paragraphEnd.length; i++) paragraphEnd[i] = ends.get(i);
        return new Corpus(source, sentences, paragraphEnd);
    }

    public int size() {
        return sentences.size();
    }

    public String sentence(int i) {
        return sentences.get(i);
    }

    /** Whether sentence i is the last of its paragraph. */
    public boolean endsParagraph(int i) {
        return paragraphEnd[i];
    }

    public String source() {
        return source;
    }

    @Override
    public String toString() {
        return "Corpus[" + source + ", " + sentences.size() + " sentences]";
    }
}
