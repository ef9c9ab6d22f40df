package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LayerSelectionTest {

  @Test
  void evenlySpacedKeepsFirstAndLast() {
    assertArrayEquals(new int[] {0, 4, 7}, LayerSelection.evenlySpaced(8, 3));
    assertArrayEquals(new int[] {0, 11}, LayerSelection.evenlySpaced(12, 2));
    assertArrayEquals(new int[] {0, 1, 2, 3}, LayerSelection.evenlySpaced(4, 4));
    assertArrayEquals(new int[] {0, 8, 16, 23, 31}, LayerSelection.evenlySpaced(32, 5));
    assertArrayEquals(new int[] {0}, LayerSelection.evenlySpaced(6, 1));
  }

  @Test
  void rejectsImpossibleSelections() {
    assertThrows(IllegalArgumentException.class, () -> LayerSelection.evenlySpaced(4, 5));
    assertThrows(IllegalArgumentException.class, () -> LayerSelection.evenlySpaced(4, 0));
    assertThrows(IllegalArgumentException.class, () -> LayerSelection.explicit(4, 0, 4));
    assertThrows(IllegalArgumentException.class, () -> LayerSelection.explicit(4, 2, 1));
    assertThrows(IllegalArgumentException.class, () -> LayerSelection.explicit(4));
    assertArrayEquals(new int[] {1, 3}, LayerSelection.explicit(4, 1, 3));
  }
}
