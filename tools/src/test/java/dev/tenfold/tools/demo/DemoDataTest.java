package dev.tenfold.tools.demo;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.longcontext.Passkey;
import dev.tenfold.llama.longcontext.PasskeyDocs;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.Trainer;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The demo's tokenizer and synthetic documents. */
class DemoDataTest {
    static final Tokenizer TOK = Tokenizer.fromJson(DemoTokenizer.json().toString(), "demo tokenizer");

    @Test
    void promptWordsAreSingleTokensAndDigitsStaySeparate() {
        assertEquals(DemoTokenizer.vocabSize(), TOK.vocabSize());
        int[] ids = TOK.encode("The grass is green. The pass key is 12345.", false);
        // The, grass, is, green, ., The, pass, key, is, " ", 1,2,3,4,5, "."
        assertEquals(16, ids.length, Arrays.toString(ids));
        assertEquals("The grass is green. The pass key is 12345.", TOK.decode(ids, true));
        // text outside the prompt's words still encodes, byte by byte, and round-trips
        String other = "Grüße, Welt! 42";
        assertEquals(other, TOK.decode(TOK.encode(other, false), true));
        for (String w : DemoTokenizer.words()) assertEquals(1, TOK.encode(w, false).length, w);
    }

    @Test
    void passkeyDocumentsHaveTheEvalFormatTheLengthAndTheAnswer() {
        PasskeyDocs docs = new PasskeyDocs(TOK);
        SplittableRandom rng = new SplittableRandom(3);
        int min = docs.minLength();
        assertTrue(min > 40 && min < 100, "fixed parts " + min);
        for (int len : new int[] {min, 150, 256, 2560}) {
            Trainer.Example e = example(docs.passkey(rng, len));
            int n = e.ids().length + 1; // the document is ids plus the last target
            assertTrue(n <= len && n >= len - 8, len + " -> " + n);
            String text = TOK.decode(Arrays.stream(e.ids()).boxed().toList(), true);
            assertTrue(text.startsWith(Passkey.INSTRUCTION), text);
            var m = java.util.regex.Pattern.compile("The pass key is (\\d{5})\\. Remember it\\. \\1 is the pass key\\.").matcher(text);
            assertTrue(m.find(), text);
            String key = m.group(1);
            assertTrue(text.endsWith(Passkey.QUESTION + " " + Passkey.ANSWER_PREFIX + " " + key + "."), text.substring(text.length() - 60));
            assertEquals(TOK.eosId(), e.targets()[e.targets().length - 1]);
            // targets are the ids shifted by one; every position has a loss
            for (int i = 0; i + 1 < e.ids().length; i++) assertEquals(e.ids()[i + 1], e.targets()[i]);
            assertNull(e.positions());
        }
    }

    @Test
    void denseDocumentsRepeatEachKeyAndSkippedPositionsSpanTheWindow() {
        PasskeyDocs docs = new PasskeyDocs(TOK);
        SplittableRandom rng = new SplittableRandom(4);
        Trainer.Example d = example(docs.denseKeys(rng, 200));
        String text = TOK.decode(Arrays.stream(d.ids()).boxed().toList(), true);
        var m = java.util.regex.Pattern.compile("The pass key is (\\d{5})\\. Remember it\\. (\\d{5}) is the pass key\\.").matcher(text);
        int needles = 0;
        while (m.find()) {
            assertEquals(m.group(1), m.group(2));
            needles++;
        }
        assertTrue(needles >= 4, text);
        assertTrue(d.ids().length >= 200 - 1 && d.ids().length < 240);

        Trainer.Example s = example(docs.passkeySkipped(rng, 300, 2560));
        int[] pos = s.positions();
        assertEquals(s.ids().length, pos.length);
        assertEquals(0, pos[0]);
        assertTrue(pos[pos.length - 1] < 2560);
        int jumps = 0;
        for (int i = 1; i < pos.length; i++) {
            assertTrue(pos[i] > pos[i - 1]);
            if (pos[i] != pos[i - 1] + 1) jumps++;
        }
        assertTrue(jumps <= 1);
    }

    private static Trainer.Example example(PasskeyDocs.Doc d) { return Trainer.Example.nextTokens(d.tokens(), d.positions()); }
}
