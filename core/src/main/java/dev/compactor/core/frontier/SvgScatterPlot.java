package dev.compactor.core.frontier;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * Writes a scatter plot of points on two objectives as a stand-alone SVG file (plain text, no
 * library): both axes with ticks, tick labels and titles saying which way is better, every point
 * numbered, the (x, y) Pareto frontier joined by a line, an optional chosen point ringed, a legend,
 * and a key from numbers to labels beside the plot (point labels such as recipe names are too long
 * to sit next to the points without overlapping).
 *
 * <p>Layout, in SVG user units (pixels): {@value #WIDTH} × {@value #HEIGHT}; the plot area spans x
 * {@value #LEFT}..{@value #RIGHT} and y {@value #TOP}..{@value #BOTTOM}; the legend and the key
 * start at x {@value #KEY_X}.
 */
public final class SvgScatterPlot {

  /** How tick labels print a value. */
  public enum Format {
    /** Plain numbers with as many decimals as the tick step needs. */
    NUMBER,
    /** Bytes in KiB or MiB (by the largest value), e.g. "0.75 MiB". */
    BYTES
  }

  static final int WIDTH = 1040;
  static final int HEIGHT = 620;
  static final int LEFT = 96;
  static final int RIGHT = 660;
  static final int TOP = 70;
  static final int BOTTOM = 540;
  static final int KEY_X = 690;

  private static final String FRONTIER_COLOUR = "#1f5fbf";
  private static final String DOMINATED_COLOUR = "#8c8c8c";
  private static final String CHOSEN_COLOUR = "#d62728";

  private final String title;
  private final String subtitle;
  private final Objective x;
  private final Format xFormat;
  private final Objective y;
  private final Format yFormat;

  /**
   * A plot of {@code y} against {@code x}.
   *
   * @param subtitle a second line under the title, or null
   */
  public SvgScatterPlot(
      String title, String subtitle, Objective x, Format xFormat, Objective y, Format yFormat) {
    this.title = title;
    this.subtitle = subtitle;
    this.x = x;
    this.xFormat = xFormat;
    this.y = y;
    this.yFormat = yFormat;
  }

  /**
   * The SVG document.
   *
   * @param chosen label of the point to ring (e.g. the one published), or null
   */
  public String render(List<FrontierPoint> points, String chosen) {
    ParetoFrontier front = ParetoFrontier.of(points, List.of(x, y));
    List<ParetoFrontier.Ranked> plotted =
        front.ranked().stream()
            .filter(r -> r.status() != ParetoFrontier.Status.INCOMPLETE)
            .toList();
    double[] xr = range(plotted, x.name());
    double[] yr = range(plotted, y.name());
    Ticks xt = Ticks.of(xr[0], xr[1], 7, unit(xFormat, xr[1]));
    Ticks yt = Ticks.of(yr[0], yr[1], 7, unit(yFormat, yr[1]));
    StringBuilder s = new StringBuilder();
    s.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.append(
        String.format(
            Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d"
                + " %d\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">%n",
            WIDTH,
            HEIGHT,
            WIDTH,
            HEIGHT));
    s.append(
        String.format(
            Locale.ROOT,
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>%n",
            WIDTH,
            HEIGHT));
    text(s, "title", LEFT, 28, "start", 18, "bold", title);
    if (subtitle != null) {
      text(s, "subtitle", LEFT, 50, "start", 13, "normal", subtitle);
    }
    axes(s, xt, yt);
    frontierLine(s, front, xt, yt);
    List<double[]> taken = new ArrayList<>();
    for (ParetoFrontier.Ranked r : plotted) {
      double px = xt.toPixel(r.point().value(x.name()), LEFT, RIGHT);
      double py = yt.toPixel(r.point().value(y.name()), BOTTOM, TOP);
      taken.add(new double[] {px - 5, py - 5, px + 5, py + 5});
    }
    for (int i = 0; i < front.ranked().size(); i++) {
      ParetoFrontier.Ranked r = front.ranked().get(i);
      if (r.status() == ParetoFrontier.Status.INCOMPLETE) {
        continue;
      }
      point(s, r, i + 1, chosen, xt, yt, taken);
    }
    legendAndKey(s, front, chosen);
    s.append("</svg>\n");
    return s.toString();
  }

  private void axes(StringBuilder s, Ticks xt, Ticks yt) {
    s.append(
        String.format(
            Locale.ROOT,
            "<rect class=\"plot-area\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\""
                + " stroke=\"#333333\"/>%n",
            LEFT,
            TOP,
            RIGHT - LEFT,
            BOTTOM - TOP));
    s.append("<g class=\"x-ticks\">\n");
    for (double v : xt.values()) {
      double px = xt.tickToPixel(v, LEFT, RIGHT);
      line(s, px, TOP, px, BOTTOM, "#e6e6e6", 1);
      line(s, px, BOTTOM, px, BOTTOM + 6, "#333333", 1);
      text(s, "tick", px, BOTTOM + 22, "middle", 12, "normal", format(v, xt, xFormat));
    }
    s.append("</g>\n<g class=\"y-ticks\">\n");
    for (double v : yt.values()) {
      double py = yt.tickToPixel(v, BOTTOM, TOP);
      line(s, LEFT, py, RIGHT, py, "#e6e6e6", 1);
      line(s, LEFT - 6, py, LEFT, py, "#333333", 1);
      text(s, "tick", LEFT - 10, py + 4, "end", 12, "normal", format(v, yt, yFormat));
    }
    s.append("</g>\n");
    text(s, "x-label", (LEFT + RIGHT) / 2.0, BOTTOM + 50, "middle", 14, "bold", axisTitle(x));
    s.append(
        String.format(
            Locale.ROOT,
            "<text class=\"y-label\" x=\"0\" y=\"0\" transform=\"translate(%d %.1f) rotate(-90)\""
                + " text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">%s</text>%n",
            24,
            (TOP + BOTTOM) / 2.0,
            escape(axisTitle(y))));
  }

  private static String axisTitle(Objective o) {
    return o.label()
        + (o.goal() == Objective.Goal.MINIMIZE ? " (lower is better)" : " (higher is better)");
  }

  private void frontierLine(StringBuilder s, ParetoFrontier front, Ticks xt, Ticks yt) {
    List<FrontierPoint> f =
        front.ranked().stream()
            .filter(ParetoFrontier.Ranked::onFrontier)
            .map(ParetoFrontier.Ranked::point)
            .sorted(Comparator.comparingDouble(p -> p.value(x.name())))
            .toList();
    StringBuilder pts = new StringBuilder();
    for (FrontierPoint p : f) {
      pts.append(
          String.format(
              Locale.ROOT,
              "%.1f,%.1f ",
              xt.toPixel(p.value(x.name()), LEFT, RIGHT),
              yt.toPixel(p.value(y.name()), BOTTOM, TOP)));
    }
    s.append(
        String.format(
            Locale.ROOT,
            "<polyline class=\"frontier\" points=\"%s\" fill=\"none\" stroke=\"%s\""
                + " stroke-width=\"2\"/>%n",
            pts.toString().trim(),
            FRONTIER_COLOUR));
  }

  private void point(
      StringBuilder s,
      ParetoFrontier.Ranked r,
      int number,
      String chosen,
      Ticks xt,
      Ticks yt,
      List<double[]> taken) {
    double px = xt.toPixel(r.point().value(x.name()), LEFT, RIGHT);
    double py = yt.toPixel(r.point().value(y.name()), BOTTOM, TOP);
    boolean front = r.onFrontier();
    s.append(
        String.format(
            Locale.ROOT,
            "<circle class=\"point %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"%s\""
                + " stroke-width=\"1.5\"><title>%s</title></circle>%n",
            front ? "frontier" : "dominated",
            px,
            py,
            front ? FRONTIER_COLOUR : "white",
            front ? FRONTIER_COLOUR : DOMINATED_COLOUR,
            escape(r.point().label())));
    if (r.point().label().equals(chosen)) {
      s.append(
          String.format(
              Locale.ROOT,
              "<circle class=\"chosen\" cx=\"%.1f\" cy=\"%.1f\" r=\"10\" fill=\"none\" stroke=\"%s\""
                  + " stroke-width=\"2.5\"/>%n",
              px,
              py,
              CHOSEN_COLOUR));
    }
    String label = Integer.toString(number);
    double w = 7.5 * label.length();
    // right, left, above, below, then further out: the first place that covers no label or point
    double[][] places = {
      {8, -4},
      {-8 - w, -4},
      {-w / 2, -10},
      {-w / 2, 18},
      {8, 10},
      {-8 - w, 10},
      {8, -16},
      {-8 - w, -16}
    };
    double[] pick = places[0];
    for (double[] o : places) {
      double[] box = {px + o[0], py + o[1] - 11, px + o[0] + w, py + o[1] + 1};
      if (taken.stream().noneMatch(t -> overlaps(t, box))) {
        pick = o;
        break;
      }
    }
    taken.add(new double[] {px + pick[0], py + pick[1] - 11, px + pick[0] + w, py + pick[1] + 1});
    text(
        s,
        "point-label",
        px + pick[0],
        py + pick[1],
        "start",
        12,
        front ? "bold" : "normal",
        label);
  }

  private static boolean overlaps(double[] a, double[] b) {
    return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
  }

  private void legendAndKey(StringBuilder s, ParetoFrontier front, String chosen) {
    double ly = TOP + 4;
    s.append("<g class=\"legend\">\n");
    s.append(
        String.format(
            Locale.ROOT,
            "<circle cx=\"%d\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"%s\"/>%n",
            KEY_X + 6,
            ly,
            FRONTIER_COLOUR,
            FRONTIER_COLOUR));
    line(s, KEY_X - 6, ly, KEY_X + 18, ly, FRONTIER_COLOUR, 2);
    text(s, "legend-entry", KEY_X + 26, ly + 4, "start", 12, "normal", "Pareto frontier");
    ly += 20;
    s.append(
        String.format(
            Locale.ROOT,
            "<circle cx=\"%d\" cy=\"%.1f\" r=\"5\" fill=\"white\" stroke=\"%s\""
                + " stroke-width=\"1.5\"/>%n",
            KEY_X + 6,
            ly,
            DOMINATED_COLOUR));
    text(s, "legend-entry", KEY_X + 26, ly + 4, "start", 12, "normal", "dominated");
    if (chosen != null) {
      ly += 20;
      s.append(
          String.format(
              Locale.ROOT,
              "<circle cx=\"%d\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"%s\""
                  + " stroke-width=\"2.5\"/>%n",
              KEY_X + 6,
              ly,
              CHOSEN_COLOUR));
      text(s, "legend-entry", KEY_X + 26, ly + 4, "start", 12, "normal", "chosen: " + chosen);
    }
    s.append("</g>\n<g class=\"key\">\n");
    ly += 30;
    int n = front.ranked().size();
    double step = Math.min(18, (HEIGHT - 20 - ly) / Math.max(1, n));
    double size = Math.max(8, Math.min(12, step - 3));
    for (int i = 0; i < n; i++) {
      ParetoFrontier.Ranked r = front.ranked().get(i);
      String entry = (i + 1) + "  " + r.point().label();
      if (r.status() == ParetoFrontier.Status.INCOMPLETE) {
        entry += "  (not plotted: no " + String.join(", no ", r.missing()) + ")";
      }
      // about 0.6 em per character of this font: cut what would run past the right edge
      int fits = (int) ((WIDTH - KEY_X - 8) / (0.6 * size));
      if (entry.length() > fits) {
        entry = entry.substring(0, fits - 1) + "…";
      }
      text(
          s,
          "key-entry",
          KEY_X,
          ly + i * step,
          "start",
          size,
          r.onFrontier() ? "bold" : "normal",
          entry);
    }
    s.append("</g>\n");
  }

  private static double[] range(List<ParetoFrontier.Ranked> rs, String name) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    for (ParetoFrontier.Ranked r : rs) {
      double v = r.point().value(name);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (rs.isEmpty()) {
      return new double[] {0, 1};
    }
    return new double[] {lo, hi};
  }

  /** The unit tick labels count in: MiB or KiB for bytes (by the largest value), else 1. */
  static double unit(Format f, double max) {
    if (f != Format.BYTES) {
      return 1;
    }
    return max >= 1 << 20 ? 1 << 20 : max >= 1 << 10 ? 1 << 10 : 1;
  }

  private static String format(double v, Ticks t, Format f) {
    String shown = String.format(Locale.ROOT, "%." + decimals(t.step) + "f", v);
    if (f != Format.BYTES) {
      return shown;
    }
    return shown + (t.unit == 1 << 20 ? " MiB" : t.unit == 1 << 10 ? " KiB" : " B");
  }

  /** Decimals that tell ticks {@code step} apart, e.g. 0.25 → 2, 5 → 0. */
  static int decimals(double step) {
    int d = 0;
    while (d < 10 && Math.abs(step * Math.pow(10, d) - Math.rint(step * Math.pow(10, d))) > 1e-6) {
      d++;
    }
    return d;
  }

  private static void line(
      StringBuilder s, double x1, double y1, double x2, double y2, String colour, double width) {
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\""
                + " stroke-width=\"%.1f\"/>%n",
            x1,
            y1,
            x2,
            y2,
            colour,
            width));
  }

  private static void text(
      StringBuilder s,
      String cls,
      double px,
      double py,
      String anchor,
      double size,
      String weight,
      String content) {
    s.append(
        String.format(
            Locale.ROOT,
            "<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.0f\""
                + " font-weight=\"%s\">%s</text>%n",
            cls,
            px,
            py,
            anchor,
            size,
            weight,
            escape(content)));
  }

  static String escape(String t) {
    StringBuilder b = new StringBuilder(t.length());
    for (char c : t.toCharArray()) {
      switch (c) {
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '&' -> b.append("&amp;");
        case '"' -> b.append("&quot;");
        default -> b.append(c < 0x20 && c != '\t' ? ' ' : c);
      }
    }
    return b.toString();
  }

  /**
   * Axis ticks at "nice" values (1, 2, 2.5 or 5 times a power of ten, counted in {@code unit})
   * covering [lo, hi] with a little margin, so no point sits on the frame.
   *
   * @param min the axis start, in units
   * @param max the axis end, in units
   * @param step distance between ticks, in units
   * @param unit what one unit is in data values (e.g. 1 MiB = 1048576 bytes)
   */
  record Ticks(double min, double max, double step, double unit) {

    static Ticks of(double lo, double hi, int target) {
      return of(lo, hi, target, 1);
    }

    static Ticks of(double lo, double hi, int target, double unit) {
      lo /= unit;
      hi /= unit;
      if (hi <= lo) {
        double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
        lo -= pad;
        hi += pad;
      } else {
        double pad = (hi - lo) * 0.05;
        lo -= pad;
        hi += pad;
      }
      double raw = (hi - lo) / target;
      double mag = Math.pow(10, Math.floor(Math.log10(raw)));
      double step = mag * 10;
      for (double m : new double[] {1, 2, 2.5, 5, 10}) {
        if (m * mag >= raw) {
          step = m * mag;
          break;
        }
      }
      return new Ticks(Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step, unit);
    }

    /** The tick positions, in units. */
    List<Double> values() {
      List<Double> v = new ArrayList<>();
      long n = Math.round((max - min) / step);
      for (long i = 0; i <= n; i++) {
        v.add(min + i * step);
      }
      return v;
    }

    /**
     * Maps data value {@code v} onto [from, to] pixels (to &lt; from for the y axis, which grows
     * down).
     */
    double toPixel(double v, double from, double to) {
      return from + (v / unit - min) / (max - min) * (to - from);
    }

    /** {@link #toPixel} of a tick position (in units). */
    double tickToPixel(double t, double from, double to) {
      return toPixel(t * unit, from, to);
    }
  }
}
