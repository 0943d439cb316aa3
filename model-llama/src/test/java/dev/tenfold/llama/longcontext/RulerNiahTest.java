package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.longcontext.RulerNiah.Variant;
import dev.tenfold.llama.tokenizer.TinyTokenizerJson;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** RULER's multi-needle prompts and scoring, with fake models (a perfect one, a partial one, a wrong one). */
class RulerNiahTest {
    @TempDir static Path dir;
    static Tokenizer tok;

    @BeforeAll
    static void tokenizer() throws Exception {
        TinyTokenizerJson.writeLlamaLike(dir);
        tok = Tokenizer.load(dir.resolve("tokenizer.json"));
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) n++;
        return n;
    }

    @Test
    void promptsHoldEachNeedleOnceAndHitTheLength() {
        SplittableRandom rng = new SplittableRandom(3);
        for (boolean chat : new boolean[] {false, true}) {
            Haystack b = new Haystack(tok, chat, NeedleInHaystack.BUILTIN_HAYSTACK);
            for (Variant v : Variant.values()) {
                for (int target : new int[] {900, 2500}) {
                    RulerNiah.Spec s = RulerNiah.draw(v, 4, 3, rng);
                    Haystack.BuiltMany p = RulerNiah.prompt(b, v, s, target);
                    String where = v + " chat " + chat + " target " + target;
                    assertTrue(p.length() <= target && p.length() >= target - 12, where + ": length " + p.length());
                    String text = tok.decode(p.ids());
                    for (int i = 0; i < 4; i++) {
                        String needle = RulerNiah.needle(s.keys().get(i), s.numbers().get(i));
                        assertEquals(1, count(text, needle), where + ": " + needle);
                        assertEquals(" " + needle, tok.decode(Arrays.copyOfRange(p.ids(), p.needleStarts()[i], p.needleEnds()[i])), where);
                        assertEquals(s.depths()[i], p.depths()[i], 130.0 / p.haystackTokens() + 0.02, where);
                        assertEquals(1, count(text, Integer.toString(s.numbers().get(i))), where + ": the number only in its needle");
                    }
                    assertTrue(text.contains(RulerNiah.question(v, s.asked())), where);
                    assertEquals(!chat, text.endsWith(RulerNiah.answerPrefix(v, s.asked())), where);
                }
            }
        }
    }

    @Test
    void keysAndNumbersPerVariant() {
        SplittableRandom rng = new SplittableRandom(11);
        for (int t = 0; t < 50; t++) {
            RulerNiah.Spec mk = RulerNiah.draw(Variant.MULTIKEY, 5, 0, rng);
            assertEquals(5, new HashSet<>(mk.keys()).size(), "multikey keys are distinct");
            assertEquals(1, mk.asked().size());
            assertEquals(mk.numbers().get(mk.keys().indexOf(mk.asked().get(0))), mk.expected().get(0));

            RulerNiah.Spec mv = RulerNiah.draw(Variant.MULTIVALUE, 5, 0, rng);
            assertEquals(1, new HashSet<>(mv.keys()).size(), "multivalue shares one key");
            assertEquals(5, new HashSet<>(mv.numbers()).size(), "multivalue numbers are distinct");
            assertEquals(List.of(mv.keys().get(0)), mv.asked());
            assertEquals(mv.numbers(), mv.expected());

            RulerNiah.Spec mq = RulerNiah.draw(Variant.MULTIQUERY, 5, 3, rng);
            assertEquals(5, new HashSet<>(mq.keys()).size());
            assertEquals(3, new HashSet<>(mq.asked()).size());
            for (int j = 0; j < 3; j++) assertEquals(mq.numbers().get(mq.keys().indexOf(mq.asked().get(j))), mq.expected().get(j));
            for (int n : mq.numbers()) assertTrue(n >= 1_000_000 && n <= 9_999_999, "7 digits: " + n);
            for (String k : mq.keys()) assertTrue(RulerNiah.WORDS.contains(k));
        }
        assertEquals("What are all the special magic numbers for apple, badger, and zebra mentioned in the provided text?",
                RulerNiah.question(Variant.MULTIQUERY, List.of("apple", "badger", "zebra")));
        assertEquals("What is the special magic number for apple mentioned in the provided text?",
                RulerNiah.question(Variant.MULTIKEY, List.of("apple")));
        assertThrows(IllegalArgumentException.class, () -> RulerNiah.draw(Variant.MULTIQUERY, 2, 3, rng));
        assertThrows(IllegalArgumentException.class, () -> RulerNiah.draw(Variant.MULTIKEY, 0, 1, rng));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Variant.parse("multihop"));
        assertTrue(e.getMessage().contains("multihop") && e.getMessage().contains("multikey"), e.getMessage());
        assertEquals(Variant.MULTIQUERY, Variant.parse("MultiQuery"));
    }

    @Test
    void scoreIsTheFractionOfNumbersPresent() {
        assertEquals(1.0, RulerNiah.score(" 1234567.", List.of(1234567)));
        assertEquals(0.0, RulerNiah.score(" 123456", List.of(1234567)));
        assertEquals(0.5, RulerNiah.score("7654321 and 1111111", List.of(1234567, 7654321)));
        assertEquals(0.75, RulerNiah.score("1000001, 1000002, 1000003", List.of(1000001, 1000002, 1000003, 1000004)));
        assertEquals(0.0, RulerNiah.score("", List.of(1000001, 1000002)));
    }

    /** The prompt's needles as key -> numbers, read back from the text. */
    static final Pattern NEEDLE = Pattern.compile("One of the special magic numbers for (\\w+) is: (\\d{7})\\.");
    static final Pattern ASKED = Pattern.compile("magic numbers? for (.+?) mentioned in the provided text\\?");

    /** A model that answers with the first {@code keep} of the numbers the question wants. */
    static Function<int[], String> oracle(int keep) {
        return ids -> {
            String text = tok.decode(ids);
            Matcher q = ASKED.matcher(text);
            assertTrue(q.find(), text);
            List<String> asked = Arrays.asList(q.group(1).replace(", and ", ", ").replace(" and ", ", ").split(", "));
            List<String> numbers = new ArrayList<>();
            Matcher m = NEEDLE.matcher(text);
            while (m.find()) if (asked.contains(m.group(1))) numbers.add(m.group(2));
            return " " + String.join(", ", numbers.subList(0, Math.min(keep, numbers.size()))) + ".";
        };
    }

    @Test
    void runScoresFullPartialAndZero() {
        int[] lengths = {900, 1300}; // four needles and the question are ~450 tokens in the nearly byte-level tiny vocab
        for (Variant v : Variant.values()) {
            RulerNiah.Result full = RulerNiah.run(tok, false, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", v, 4, 4, lengths, 2, 5,
                    oracle(99), null);
            assertEquals(2, full.lengths().size());
            for (RulerNiah.LengthResult l : full.lengths()) {
                assertEquals(1.0, l.score(), v.toString());
                assertEquals(2, l.trials().size());
                for (RulerNiah.Trial t : l.trials()) assertEquals(4, t.needles().size());
            }
            RulerNiah.Result none = RulerNiah.run(tok, true, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", v, 4, 4, new int[] {900}, 2, 5,
                    ids -> " 0000000", null);
            assertEquals(0.0, none.lengths().get(0).score(), v.toString());
        }
        // half the numbers: multivalue and multiquery score 0.5, multikey (one number) still 1
        for (Variant v : new Variant[] {Variant.MULTIVALUE, Variant.MULTIQUERY}) {
            RulerNiah.Result half = RulerNiah.run(tok, false, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", v, 4, 4, new int[] {900}, 3, 1,
                    oracle(2), null);
            assertEquals(0.5, half.lengths().get(0).score(), 1e-12, v.toString());
            for (RulerNiah.Trial t : half.lengths().get(0).trials()) assertEquals(0.5, t.score(), 1e-12);
        }
        RulerNiah.Result twoOfThree = RulerNiah.run(tok, false, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", Variant.MULTIQUERY, 4, 3,
                new int[] {900}, 2, 1, oracle(2), null);
        assertEquals(2.0 / 3, twoOfThree.lengths().get(0).score(), 1e-12);
        assertEquals(3, twoOfThree.lengths().get(0).trials().get(0).asked().size());
    }

    @Test
    void seededRunsRepeat() {
        Function<int[], String> answer = oracle(1);
        String a = RulerNiah.run(tok, false, Passkey.FILLER, "f", Variant.MULTIQUERY, 3, 2, new int[] {700, 900}, 3, 42, answer, null)
                .toJson().toString();
        String b = RulerNiah.run(tok, false, Passkey.FILLER, "f", Variant.MULTIQUERY, 3, 2, new int[] {700, 900}, 3, 42, answer, null)
                .toJson().toString();
        String c = RulerNiah.run(tok, false, Passkey.FILLER, "f", Variant.MULTIQUERY, 3, 2, new int[] {700, 900}, 3, 43, answer, null)
                .toJson().toString();
        assertEquals(a, b);
        assertNotEquals(a, c);
    }

    @Test
    void tooShortFailsBeforeAnyGeneration() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RulerNiah.run(tok, false,
                NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", Variant.MULTIKEY, 4, 1, new int[] {900, 200}, 1, 0,
                ids -> { throw new AssertionError("no generation before every prompt is built"); }, null));
        assertTrue(e.getMessage().contains("shorter than") && e.getMessage().contains("4 needles"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RulerNiah.run(tok, false, Passkey.FILLER, "f", Variant.MULTIKEY, 4, 1,
                new int[] {900}, 0, 0, ids -> "", null));
    }
}
