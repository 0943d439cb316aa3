package dev.tenfold.llama.tokenizer;

import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.IntStream;

import static dev.tenfold.llama.tokenizer.ChatTemplate.IGNORE;
import static dev.tenfold.llama.tokenizer.TinyTokenizerJson.*;
import static org.junit.jupiter.api.Assertions.*;

/** The Llama-3 chat template on the tiny vocab, ids and labels worked out by hand. */
class TokenizerChatTemplateTest {
    private static final int X = IGNORE;
    // None of the tiny merges apply inside these words, so they are their byte symbols (char - 33).
    private static final int[] USER = {'u' - 33, 's' - 33, 'e' - 33, 'r' - 33};
    private static final int[] ASSISTANT = {'a' - 33, 's' - 33, 's' - 33, 'i' - 33, 's' - 33, 't' - 33, 'a' - 33, 'n' - 33, 't' - 33};
    private static final int NN = 270; // "\n\n" -> Ċ Ċ -> ĊĊ

    private final Tokenizer tok = tiny();
    private final ChatTemplate chat = new ChatTemplate(tok);

    @Test
    void twoTurnConversation() {
        List<Message> conversation = List.of(
                Message.user("hi"),
                Message.assistant("Hello world!"),
                Message.user("the the"),
                Message.assistant(" yell\n")); // trimmed to "yell", as Meta's template does
        ChatTemplate.Rendered r = chat.render(conversation, false);
        int[] ids = concat(
                new int[] {BOS},
                new int[] {START_HEADER}, USER, new int[] {END_HEADER, NN},
                new int[] {'h' - 33, 'i' - 33, EOT},                   // "hi": no merge
                new int[] {START_HEADER}, ASSISTANT, new int[] {END_HEADER, NN},
                new int[] {264, 260, 0, EOT},                          // "Hello world!"
                new int[] {START_HEADER}, USER, new int[] {END_HEADER, NN},
                new int[] {'t' - 33, 267, 268, EOT},                   // "the the": t he | Ġthe
                new int[] {START_HEADER}, ASSISTANT, new int[] {END_HEADER, NN},
                new int[] {'y' - 33, 'e' - 33, 262, EOT});             // "yell": y e ll
        int[] labels = concat(
                new int[] {X},
                new int[] {X}, masked(USER), new int[] {X, X},
                new int[] {X, X, X},
                new int[] {X}, masked(ASSISTANT), new int[] {X, X},
                new int[] {264, 260, 0, EOT},
                new int[] {X}, masked(USER), new int[] {X, X},
                new int[] {X, X, X, X},
                new int[] {X}, masked(ASSISTANT), new int[] {X, X},
                new int[] {'y' - 33, 'e' - 33, 262, EOT});
        assertArrayEquals(ids, r.ids());
        assertArrayEquals(labels, r.labels());
        assertEquals(ids.length, r.length());
    }

    @Test
    void systemMessageAndGenerationPrompt() {
        ChatTemplate.Rendered r = chat.render(List.of(Message.system("x"), Message.user("hi")), true);
        int[] system = {'s' - 33, 'y' - 33, 's' - 33, 't' - 33, 'e' - 33, 'm' - 33};
        int[] ids = concat(
                new int[] {BOS},
                new int[] {START_HEADER}, system, new int[] {END_HEADER, NN, 'x' - 33, EOT},
                new int[] {START_HEADER}, USER, new int[] {END_HEADER, NN, 'h' - 33, 'i' - 33, EOT},
                new int[] {START_HEADER}, ASSISTANT, new int[] {END_HEADER, NN});
        assertArrayEquals(ids, r.ids());
        assertTrue(IntStream.of(r.labels()).allMatch(l -> l == IGNORE), "a prompt has nothing to learn");
    }

    @Test
    void idsAgreeWithTokenizingTheRenderedText() {
        List<Message> conversation = List.of(
                Message.system("You are terse."), Message.user("Hello world! naïve 東京 😀"),
                Message.assistant("the  the, 12345\n\nyell"));
        for (boolean prompt : new boolean[] {false, true}) {
            String text = chat.renderText(conversation, prompt);
            assertArrayEquals(tok.encode(text, true), chat.render(conversation, prompt).ids());
        }
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n",
                chat.renderText(List.of(Message.user("  hi \n")), true));
    }

    @Test
    void contentCannotForgeSpecialTokens() {
        ChatTemplate.Rendered r = chat.render(List.of(Message.user("<|eot_id|>")), false);
        assertEquals(1, IntStream.of(r.ids()).filter(id -> id == EOT).count());
    }

    @Test
    void untrimmedTemplateKeepsWhitespace() {
        ChatTemplate raw = new ChatTemplate(tok, false);
        ChatTemplate.Rendered r = raw.render(List.of(Message.assistant("x  ")), false);
        int[] tail = {'x' - 33, 269, EOT}; // "x", "  " -> ĠĠ
        int[] ids = r.ids();
        assertArrayEquals(tail, java.util.Arrays.copyOfRange(ids, ids.length - 3, ids.length));
        assertArrayEquals(tail, java.util.Arrays.copyOfRange(r.labels(), ids.length - 3, ids.length));
        assertEquals("x", ChatTemplate.strip("\u3000\t x \u00a0\n"));
    }

    @Test
    void unknownRolesAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> chat.render(List.of(Message.user("a"), new Message("tool", "b")), false));
        assertTrue(e.getMessage().contains("tool") && e.getMessage().contains("message 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> chat.render(List.of(new Message("User", "a")), false));
    }

    private static int[] masked(int[] a) {
        int[] m = new int[a.length];
        java.util.Arrays.fill(m, IGNORE);
        return m;
    }

    private static int[] concat(int[]... parts) {
        return java.util.Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
    }
}
