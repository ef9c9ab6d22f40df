package dev.compactor.core.tasks;

import java.util.List;

/**
 * One task document, in the shape lm-eval's {@code doc_to_text} / {@code doc_to_choice} / {@code
 * doc_to_target} produce: the context the model reads and what it is scored on.
 */
public sealed interface TaskDoc {

  /** The document's id (its line number when the file gives none). */
  String id();

  /** The text the model conditions on. */
  String context();

  /**
   * A multiple-choice document ({@code output_type: multiple_choice}): each choice is scored as the
   * continuation {@code delimiter + choice} of the context.
   *
   * @param gold the index of the right choice
   * @param delimiter lm-eval's {@code target_delimiter}, {@code " "} by default
   */
  record MultipleChoice(String id, String context, List<String> choices, int gold, String delimiter)
      implements TaskDoc {
    public MultipleChoice {
      choices = List.copyOf(choices);
      if (choices.size() < 2) {
        throw new IllegalArgumentException(
            "a multiple-choice document needs at least 2 choices, found " + choices.size());
      }
      if (gold < 0 || gold >= choices.size()) {
        throw new IllegalArgumentException(
            "gold must index one of the " + choices.size() + " choices, found " + gold);
      }
    }
  }

  /**
   * A continuation document ({@code output_type: loglikelihood}, as lm-eval's LAMBADA): right when
   * greedy decoding from the context yields exactly the continuation's tokens.
   */
  record Continuation(String id, String context, String continuation) implements TaskDoc {
    public Continuation {
      if (continuation.isEmpty()) {
        throw new IllegalArgumentException("a continuation document needs a non-empty target");
      }
    }
  }
}
