package dev.tenfold.llama.longcontext;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import java.util.List;

/**
 * One synthetic record: a conversation (the first user message holds the long context and the
 * first question), its rendered length in tokens, and the answers (each also verbatim in the context).
 */
public record SynthRecord(SynthTask task, int targetTokens, int tokens, List<Message> conversation, List<String> answers) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public SynthRecord {
        conversation = List.copyOf(conversation);
        answers = List.copyOf(answers);
    }

    /** The long context with the first question: the first user message's content. */
    public String context() {
        return conversation.get(0).content();
    }

    /** One JSON line (no newline) in the recipe's format: {"conversations": [{"role", "content"}, ...]}. */
    public String toJsonLine() {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode turns = root.putArray("conversations");
        for (Message m : conversation) turns.addObject().put("role", m.role()).put("content", m.content());
        try {
            return JSON.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e); // a tree of strings always serializes
        }
    }
}
