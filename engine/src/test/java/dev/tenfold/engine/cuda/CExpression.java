package dev.tenfold.engine.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Evaluates the integer C expression of a header macro such as TF_FLASH_FWD_SMEM(D): numbers (with u/l
 * suffixes), D, other numeric TF_ defines, sizeof of the element types, + - * / % << >> and parentheses.
 * Anything else is refused, so that the test says so instead of guessing.
 */
final class CExpression {
    private final List<String> tokens;
    private final long d;
    private final Map<String, Long> defines;
    private int at;

    private CExpression(String text, long d, Map<String, Long> defines) {
        this.tokens = tokenize(text);
        this.d = d;
        this.defines = defines;
    }

    static long evaluate(String text, long d, Map<String, Long> defines) {
        CExpression e = new CExpression(text, d, defines);
        long v = e.shift();
        if (e.at != e.tokens.size()) throw new IllegalArgumentException("cannot evaluate '" + text + "' at '" + e.tokens.get(e.at) + "'");
        return v;
    }

    private static List<String> tokenize(String s) {
        List<String> out = new ArrayList<>();
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) { i++; continue; }
            int j = i + 1;
            if (Character.isLetterOrDigit(c) || c == '_') {
                while (j < s.length() && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) j++;
            } else if ((c == '<' || c == '>') && j < s.length() && s.charAt(j) == c) {
                j++;
            }
            out.add(s.substring(i, j));
            i = j;
        }
        return out;
    }

    private String peek() { return at < tokens.size() ? tokens.get(at) : ""; }

    private String next() {
        if (at >= tokens.size()) throw new IllegalArgumentException("unexpected end of expression");
        return tokens.get(at++);
    }

    private long shift() {
        long v = additive();
        while (peek().equals("<<") || peek().equals(">>")) v = next().equals("<<") ? v << additive() : v >> additive();
        return v;
    }

    private long additive() {
        long v = multiplicative();
        while (peek().equals("+") || peek().equals("-")) v = next().equals("+") ? v + multiplicative() : v - multiplicative();
        return v;
    }

    private long multiplicative() {
        long v = unary();
        while (peek().equals("*") || peek().equals("/") || peek().equals("%")) {
            String op = next();
            long r = unary();
            v = op.equals("*") ? v * r : op.equals("/") ? v / r : v % r;
        }
        return v;
    }

    private long unary() {
        String t = next();
        if (t.equals("-")) return -unary();
        if (t.equals("+")) return unary();
        if (t.equals("(")) {
            long v = shift();
            expect(")");
            return v;
        }
        if (t.equals("D")) return d;
        if (t.equals("sizeof")) {
            expect("(");
            String type = next();
            expect(")");
            return switch (type) {
                case "bf16", "f16", "__nv_bfloat16", "__half", "half", "short" -> 2;
                case "float", "int" -> 4;
                case "double", "long" -> 8;
                default -> throw new IllegalArgumentException("sizeof(" + type + ") is unknown to the test's evaluator");
            };
        }
        if (defines.containsKey(t)) return defines.get(t);
        if (Character.isDigit(t.charAt(0))) return Long.parseLong(t.replaceAll("[uUlL]+$", ""));
        throw new IllegalArgumentException("unknown token '" + t + "'");
    }

    private void expect(String s) {
        String t = next();
        if (!t.equals(s)) throw new IllegalArgumentException("expected '" + s + "', got '" + t + "'");
    }
}
