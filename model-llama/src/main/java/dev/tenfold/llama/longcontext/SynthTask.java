package dev.tenfold.llama.longcontext;

import java.util.Locale;

/** The kinds of synthetic long-context records {@link Synthesizer} makes. */
public enum SynthTask {
    /** A 5-digit pass key hidden in repeated filler; one question. */
    PASSKEY("passkey"),
    /** One "needle" fact hidden in a haystack (a corpus or the built-in filler); one question. */
    NIAH("niah"),
    /** A JSON object of random UUID keys and values; one to three keys asked for, one turn each. */
    KV("kv"),
    /** Three to five facts planted in a user's corpus; one question per fact, as one multi-turn conversation. */
    MULTI_DETAIL("multi-detail");

    private final String cliName;

    SynthTask(String cliName) {
        this.cliName = cliName;
    }

    /** The name the CLI uses ("passkey", "niah", "kv", "multi-detail"). */
    public String cliName() {
        return cliName;
    }

    /** Whether the task cannot run without a corpus. */
    public boolean needsCorpus() {
        return this == MULTI_DETAIL;
    }

    /** Parses a CLI name (case-insensitive; "multi_detail" accepted too). */
    public static SynthTask parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (SynthTask t : values()) if (t.cliName.equals(n)) return t;
        throw new IllegalArgumentException("unknown task \"" + name + "\"; expected passkey, niah, kv or multi-detail");
    }

    @Override
    public String toString() {
        return cliName;
    }
}
