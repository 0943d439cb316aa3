package dev.tenfold.tools;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LongBench's tasks as its scripts define them: the prompt template (config/dataset2prompt.json,
 * verbatim, typos included, since a changed prompt changes the scores), the generation length
 * (config/dataset2maxlen.json), the metric (eval.py), whether a chat model gets the chat template
 * (pred.py leaves the few-shot and code tasks raw) and whether only the first line of the answer is
 * scored (eval.py, for the few-shot tasks); and the category each belongs to in the paper's table.
 */
final class LongBenchTasks {
    private LongBenchTasks() {}

    /** The columns of LongBench's (and the ten-fold paper's) table, in its order. */
    enum Category {
        SINGLE_DOC_QA("Single-Doc QA"), MULTI_DOC_QA("Multi-Doc QA"), SUMMARIZATION("Summarization"), FEW_SHOT("Few-shot"),
        SYNTHETIC("Synthetic"), CODE("Code");

        final String title;

        Category(String title) { this.title = title; }
    }

    /** How a task's answers are scored; see {@link LongBenchMetrics}. */
    enum Metric {
        QA_F1("qa_f1"), ROUGE_L("rouge_l"), CLASSIFICATION("classification"), RETRIEVAL_EN("retrieval"), RETRIEVAL_ZH("retrieval_zh"),
        COUNT("count"), CODE_SIM("code_sim");

        final String label;

        Metric(String label) { this.label = label; }

        double score(String prediction, String answer, List<String> allClasses) {
            return switch (this) {
                case QA_F1 -> LongBenchMetrics.qaF1(prediction, answer);
                case ROUGE_L -> LongBenchMetrics.rougeL(prediction, answer);
                case CLASSIFICATION -> LongBenchMetrics.classification(prediction, answer, allClasses);
                case RETRIEVAL_EN -> LongBenchMetrics.retrievalEn(prediction, answer);
                case RETRIEVAL_ZH -> LongBenchMetrics.retrievalZh(prediction, answer);
                case COUNT -> LongBenchMetrics.count(prediction, answer);
                case CODE_SIM -> LongBenchMetrics.codeSim(prediction, answer);
            };
        }
    }

    /**
     * One task. {@code chat}: a chat model's prompt goes through the chat template; {@code firstLine}:
     * only the prediction's first line (after leading newlines) is scored.
     */
    record Task(String name, Category category, String template, int maxNewTokens, Metric metric, boolean chat, boolean firstLine) {
        /** The task's prompt for a record: the template with {context} and {input} filled in (one pass, so braces in the record stay as they are). */
        String prompt(String context, String input) {
            StringBuilder sb = new StringBuilder(template.length() + context.length() + input.length());
            int i = 0;
            while (i < template.length()) {
                if (template.startsWith("{context}", i)) {
                    sb.append(context);
                    i += "{context}".length();
                } else if (template.startsWith("{input}", i)) {
                    sb.append(input);
                    i += "{input}".length();
                } else {
                    sb.append(template.charAt(i++));
                }
            }
            return sb.toString();
        }

        /** The LongBench dataset the task is: its name without LongBench-E's "_e". */
        String dataset() { return isLongBenchE() ? name.substring(0, name.length() - 2) : name; }

        /** A LongBench-E task (NAME_e.jsonl: the same task, records spread evenly over 0-4k, 4-8k and 8k+ words). */
        boolean isLongBenchE() { return name.endsWith("_e"); }

        /** The score of one prediction: the best over the reference answers (0 when there is none), as eval.py scores it. */
        double score(String prediction, List<String> answers, List<String> allClasses) {
            String p = firstLine ? LongBenchMetrics.stripLeading(prediction, '\n').split("\n", -1)[0] : prediction;
            double best = 0;
            for (String a : answers) best = Math.max(best, metric.score(p, a, allClasses));
            return best;
        }
    }

    private static final String PASSAGES = "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\n"
            + "The following are given passages.\n{context}\n\n"
            + "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\n"
            + "Question: {input}\nAnswer:";

    /** Every task tenfold scores, by the name of its file (NAME.jsonl) and of its records' "dataset". */
    static final Map<String, Task> TASKS = new LinkedHashMap<>();

    private static void add(String name, Category c, int maxNewTokens, Metric m, boolean chat, boolean firstLine, String template) {
        TASKS.put(name, new Task(name, c, template, maxNewTokens, m, chat, firstLine));
    }

    static {
        Category sd = Category.SINGLE_DOC_QA, md = Category.MULTI_DOC_QA, su = Category.SUMMARIZATION, fs = Category.FEW_SHOT,
                sy = Category.SYNTHETIC, co = Category.CODE;
        add("narrativeqa", sd, 128, Metric.QA_F1, true, false,
                "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, "
                        + "using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\n"
                        + "Now, answer the question based on the story asconcisely as you can, using a single phrase if possible. "
                        + "Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:");
        add("qasper", sd, 128, Metric.QA_F1, true, false,
                "You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence "
                        + "if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". "
                        + "If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\n"
                        + "Article: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase "
                        + "or sentence if possible. If the question cannot be answered based on the information in the article, write "
                        + "\"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". "
                        + "Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:");
        add("multifieldqa_en", sd, 64, Metric.QA_F1, true, false,
                "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, "
                        + "only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:");
        add("hotpotqa", md, 32, Metric.QA_F1, true, false, PASSAGES);
        add("2wikimqa", md, 32, Metric.QA_F1, true, false, PASSAGES);
        add("musique", md, 32, Metric.QA_F1, true, false, PASSAGES);
        add("gov_report", su, 512, Metric.ROUGE_L, true, false,
                "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\n"
                        + "Now, write a one-page summary of the report.\n\nSummary:");
        add("qmsum", su, 512, Metric.ROUGE_L, true, false,
                "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\n"
                        + "Transcript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\n"
                        + "Query: {input}\nAnswer:");
        add("multi_news", su, 512, Metric.ROUGE_L, true, false,
                "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\n"
                        + "Now, write a one-page summary of all the news.\n\nSummary:");
        add("trec", fs, 64, Metric.CLASSIFICATION, false, true,
                "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}");
        add("triviaqa", fs, 32, Metric.QA_F1, false, true,
                "Answer the question based on the given passage. Only give me the answer and do not output any other words. "
                        + "The following are some examples.\n\n{context}\n\n{input}");
        add("samsum", fs, 128, Metric.ROUGE_L, false, true,
                "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}");
        add("lsht", fs, 64, Metric.CLASSIFICATION, false, true, "请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}");
        add("passage_count", sy, 32, Metric.COUNT, true, false,
                "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs "
                        + "and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating "
                        + "paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing "
                        + "duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ");
        add("passage_retrieval_en", sy, 32, Metric.RETRIEVAL_EN, true, false,
                "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n"
                        + "{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract "
                        + "is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ");
        add("passage_retrieval_zh", sy, 32, Metric.RETRIEVAL_ZH, true, false,
                "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n"
                        + "请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：");
        add("lcc", co, 64, Metric.CODE_SIM, false, false, "Please complete the code given below. \n{context}Next line of code:\n");
        add("repobench-p", co, 64, Metric.CODE_SIM, false, false, "Please complete the code given below. \n{context}{input}Next line of code:\n");
    }

    /** The English tasks: the ten-fold paper's LongBench table averages these 16. */
    static final List<String> ENGLISH = List.of("narrativeqa", "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "musique", "gov_report",
            "qmsum", "multi_news", "trec", "triviaqa", "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p");

    /** The tasks LongBench-E has (as NAME_e), scored by length as well. */
    static final List<String> WITH_LONGBENCH_E = List.of("qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news",
            "trec", "triviaqa", "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p");

    /** A task by name, LongBench-E's NAME_e included; null if there is none. */
    static Task find(String name) {
        Task t = TASKS.get(name);
        if (t != null || !name.endsWith("_e")) return t;
        String base = name.substring(0, name.length() - 2);
        if (!WITH_LONGBENCH_E.contains(base)) return null;
        Task b = TASKS.get(base);
        return new Task(name, b.category(), b.template(), b.maxNewTokens(), b.metric(), b.chat(), b.firstLine());
    }

    /**
     * LongBench's Chinese tasks that are scored on words cut by jieba (a dictionary-based Chinese
     * segmenter with an HMM for unknown words). tenfold has no such segmenter, and cutting words
     * differently gives different F1 and ROUGE, so these are refused rather than scored wrongly.
     */
    static final List<String> NEEDS_JIEBA = List.of("multifieldqa_zh", "dureader", "vcsum");
}
