package dev.tenfold.llama.tokenizer;

import java.util.List;
import java.util.Objects;

/**
 * The Llama-3 chat template, rendered straight to token ids with a training label mask:
 *
 * <pre>
 * &lt;|begin_of_text|&gt;
 * per message: &lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{content}&lt;|eot_id|&gt;
 * generation prompt: &lt;|start_header_id|&gt;assistant&lt;|end_header_id|&gt;\n\n
 * </pre>
 *
 * Labels: the tokens of each assistant message's content and its &lt;|eot_id|&gt; carry their own
 * ids (the model learns to answer and to stop); everything else is {@link #IGNORE} (-100).
 *
 * <p>The role, the "\n\n" after the header and the content are tokenized separately, so the label
 * boundary falls exactly where the content starts. (Tokenizing the whole rendered string gives the
 * same ids unless the content starts with a newline, which would join the header's "\n\n".)
 * Content is tokenized with special tokens treated as text, so a conversation cannot forge headers.
 * Like Meta's template for Llama-3-Instruct ({@code message['content'] | trim}), content is
 * stripped of leading and trailing whitespace unless the template is made with trimContent false.
 */
public final class ChatTemplate {
    /** The label of a position that takes no part in the loss (PyTorch's ignore_index). */
    public static final int IGNORE = -100;

    /** One chat message; role is "system", "user" or "assistant". */
    public record Message(String role, String content) {
        public Message {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }

        public static Message system(String content) {
            return new Message("system", content);
        }

        public static Message user(String content) {
            return new Message("user", content);
        }

        public static Message assistant(String content) {
            return new Message("assistant", content);
        }
    }

    /** Token ids and, position by position, their training labels (an id or {@link #IGNORE}). */
    public record Rendered(int[] ids, int[] labels) {
        public int length() {
            return ids.length;
        }
    }

    private final Tokenizer tokenizer;
    private final boolean trimContent;
    private final int bos;
    private final int startHeader;
    private final int endHeader;
    private final int eot;
    private final int[] headerBreak; // "\n\n"

    /** The template as Meta ships it for Llama-3-Instruct (content trimmed). */
    public ChatTemplate(Tokenizer tokenizer) {
        this(tokenizer, true);
    }

    public ChatTemplate(Tokenizer tokenizer, boolean trimContent) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.trimContent = trimContent;
        bos = tokenizer.tokenId(Tokenizer.BEGIN_OF_TEXT);
        startHeader = tokenizer.tokenId(Tokenizer.START_HEADER_ID);
        endHeader = tokenizer.tokenId(Tokenizer.END_HEADER_ID);
        eot = tokenizer.tokenId(Tokenizer.EOT_ID);
        headerBreak = tokenizer.encode("\n\n", false);
    }

    /**
     * Renders a conversation. With {@code addGenerationPrompt} an assistant header is appended
     * (unlabelled) for the model to continue from.
     */
    public Rendered render(List<Message> messages, boolean addGenerationPrompt) {
        IntList ids = new IntList(256);
        IntList labels = new IntList(256);
        ids.add(bos);
        labels.add(IGNORE);
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            checkRole(m.role(), i);
            header(m.role(), ids, labels);
            boolean train = m.role().equals("assistant");
            int[] content = tokenizer.encode(trimContent ? strip(m.content()) : m.content(), false);
            for (int id : content) {
                ids.add(id);
                labels.add(train ? id : IGNORE);
            }
            ids.add(eot);
            labels.add(train ? eot : IGNORE);
        }
        if (addGenerationPrompt) header("assistant", ids, labels);
        return new Rendered(ids.toArray(), labels.toArray());
    }

    /** The same conversation as text, as Hugging Face's apply_chat_template(tokenize=False) writes it. */
    public String renderText(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder sb = new StringBuilder(Tokenizer.BEGIN_OF_TEXT);
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            checkRole(m.role(), i);
            sb.append(Tokenizer.START_HEADER_ID).append(m.role()).append(Tokenizer.END_HEADER_ID).append("\n\n")
                    .append(trimContent ? strip(m.content()) : m.content()).append(Tokenizer.EOT_ID);
        }
        if (addGenerationPrompt) {
            sb.append(Tokenizer.START_HEADER_ID).append("assistant").append(Tokenizer.END_HEADER_ID).append("\n\n");
        }
        return sb.toString();
    }

    private void header(String role, IntList ids, IntList labels) {
        ids.add(startHeader);
        labels.add(IGNORE);
        for (int id : tokenizer.encode(role, false)) {
            ids.add(id);
            labels.add(IGNORE);
        }
        ids.add(endHeader);
        labels.add(IGNORE);
        for (int id : headerBreak) {
            ids.add(id);
            labels.add(IGNORE);
        }
    }

    private static void checkRole(String role, int index) {
        if (!role.equals("system") && !role.equals("user") && !role.equals("assistant")) {
            throw new IllegalArgumentException("message " + index + ": role \"" + role
                    + "\" is not one of system, user, assistant");
        }
    }

    /** Python's str.strip() (what Jinja's trim does): removes characters for which isspace() is true. */
    static String strip(String s) {
        int start = 0;
        int end = s.length();
        while (start < end && isPythonSpace(s.codePointAt(start))) start += Character.charCount(s.codePointAt(start));
        while (end > start && isPythonSpace(s.codePointBefore(end))) end -= Character.charCount(s.codePointBefore(end));
        return s.substring(start, end);
    }

    // Python: bidirectional class WS, B or S, or general category Zs.
    private static boolean isPythonSpace(int cp) {
        byte dir = Character.getDirectionality(cp);
        return dir == Character.DIRECTIONALITY_WHITESPACE
                || dir == Character.DIRECTIONALITY_PARAGRAPH_SEPARATOR
                || dir == Character.DIRECTIONALITY_SEGMENT_SEPARATOR
                || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }
}
