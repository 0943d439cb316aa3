package dev.tenfold.engine.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * The one JSON parser the io package uses for untrusted headers and index files: strict UTF-8,
 * duplicate keys rejected (Jackson's default silently keeps the last one, which would let two
 * headers disagree about a tensor), shallow nesting (a header is three levels deep, so a file of
 * 100,000 '[' fails fast instead of recursing), and string/number limits no larger than a header.
 */
final class StrictJson {
    private StrictJson() {}

    /** Reference readers refuse headers above this size; we use the same bound for index files. */
    static final int MAX_BYTES = 100_000_000;

    private static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(16)
                    .maxStringLength(MAX_BYTES)
                    .maxNameLength(MAX_BYTES)
                    .maxNumberLength(400)
                    .maxDocumentLength(MAX_BYTES)
                    .build())
            .build());

    /**
     * Decodes {@code bytes} as strict UTF-8 and parses exactly one JSON value followed by
     * nothing but JSON whitespace. Failures are reported as {@code what: reason}.
     */
    static JsonNode parse(byte[] bytes, int length, String what) {
        String text;
        try {
            // Decode ourselves: given bytes, Jackson auto-detects UTF-16/32; the format says UTF-8
            // and nothing else, and a strict decoder also rejects overlong forms and surrogates.
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, 0, length))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(what + " is not valid UTF-8 (" + e.getMessage() + ")", e);
        }
        try (JsonParser p = MAPPER.createParser(text)) {
            JsonNode root = MAPPER.readTree(p);
            if (root == null) throw new SafeTensorsException(what + " is empty: no JSON value");
            long end = p.currentLocation().getCharOffset();
            JsonToken after;
            try {
                after = p.nextToken(); // null at the end; whitespace in between is skipped
            } catch (IOException e) {
                after = JsonToken.NOT_AVAILABLE; // unparseable junk is still junk
            }
            if (after != null) {
                throw new SafeTensorsException(what + " has trailing junk after the JSON value (which ends at char "
                        + end + "); only whitespace may follow it");
            }
            return root;
        } catch (IOException | RuntimeException e) {
            // JsonProcessingException and StreamConstraintsException are IOExceptions; a parser
            // RuntimeException on odd input is still bad input, so it gets the same treatment.
            if (e instanceof SafeTensorsException s) throw s;
            throw new SafeTensorsException(what + describe(e), e);
        }
    }

    /** Jackson's own reason and where it stopped, without its multi-line source excerpt. */
    private static String describe(Exception e) {
        if (e instanceof StreamConstraintsException c) {
            return " exceeds a JSON parser limit: " + oneLine(c.getOriginalMessage());
        }
        if (e instanceof JsonProcessingException j) {
            JsonLocation at = j.getLocation();
            String m = oneLine(j.getOriginalMessage());
            // Jackson's STRICT_DUPLICATE_DETECTION reports "Duplicate field 'x'": say what it means here.
            return (m.startsWith("Duplicate field") ? " has a duplicate name: " : " is not valid JSON: ") + m
                    + (at == null ? "" : " (at char " + at.getCharOffset() + ")");
        }
        return " is not valid JSON: " + oneLine(e.toString());
    }

    /** Quotes a string from the file in a message, cut short: hostile names can be megabytes. */
    static String quote(String s) {
        return "'" + (s.length() > 200 ? s.substring(0, 200) + "...(" + s.length() + " chars)" : s) + "'";
    }

    /** Keep messages on one line and short: they may quote hostile input. */
    private static String oneLine(String s) {
        if (s == null) return "";
        String t = s.replace('\n', ' ').replace('\r', ' ');
        return t.length() > 300 ? t.substring(0, 300) + "..." : t;
    }
}
