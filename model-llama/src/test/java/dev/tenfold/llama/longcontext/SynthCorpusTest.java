package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SynthCorpusTest {
    @Test
    void splitsSentencesAndKeepsParagraphEnds() {
        Corpus c = Corpus.of("One. Two!  Three?\n\n\"Four,\" he said.  Five.\r\n\r\nSix", "x");
        assertEquals(6, c.size());
        assertEquals("One.", c.sentence(0));
        assertEquals("Three?", c.sentence(2));
        assertEquals("\"Four,\" he said.", c.sentence(3));
        assertEquals("Six", c.sentence(5));
        assertFalse(c.endsParagraph(0));
        assertTrue(c.endsParagraph(2));
        assertTrue(c.endsParagraph(4));
        assertTrue(c.endsParagraph(5));
    }

    @Test
    void emptyOrMissingCorpusIsAClearError(@TempDir Path dir) throws Exception {
        Path empty = Files.writeString(dir.resolve("empty.txt"), " \n\n \n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Corpus.load(empty));
        assertTrue(e.getMessage().contains("empty.txt") && e.getMessage().contains("no text"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Corpus.load(dir.resolve("missing.txt")));
        assertTrue(e.getMessage().contains("missing.txt"), e.getMessage());
    }

    @Test
    void taskNames() {
        assertEquals(SynthTask.MULTI_DETAIL, SynthTask.parse("multi-detail"));
        assertEquals(SynthTask.MULTI_DETAIL, SynthTask.parse("Multi_Detail"));
        assertEquals(SynthTask.KV, SynthTask.parse("kv"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SynthTask.parse("summary"));
        assertTrue(e.getMessage().contains("passkey, niah, kv or multi-detail"), e.getMessage());
    }
}
