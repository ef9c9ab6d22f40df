package dev.compactor.cli;

import dev.compactor.core.cascade.RoutingCurve;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A routing curve as a plain SVG document: quality relative to the large model (y) against cost
 * relative to the large model (x), one dot per threshold, the small and the large model alone
 * marked, the quality target as a dashed line.
 */
final class CascadePlot {

  private static final int W = 640;
  private static final int H = 420;
  private static final int L = 70;
  private static final int R = 20;
  private static final int T = 40;
  private static final int B = 55;

  private CascadePlot() {}

  static String svg(RoutingCurve c, double target) {
    List<RoutingCurve.Point> all = new ArrayList<>(c.points());
    all.add(c.smallAlone());
    all.add(c.largeAlone());
    double x0 = 0;
    double x1 = 0;
    double y0 = Math.min(target, Double.MAX_VALUE);
    double y1 = target;
    for (RoutingCurve.Point p : all) {
      x1 = Math.max(x1, p.costFraction());
      y0 = Math.min(y0, p.qualityRatio());
      y1 = Math.max(y1, p.qualityRatio());
    }
    x1 *= 1.05;
    double pad = (y1 - y0) * 0.08 + 1e-9;
    y0 -= pad;
    y1 += pad;
    StringBuilder s = new StringBuilder();
    s.append(
        String.format(
            Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
                + " font-family=\"sans-serif\" font-size=\"12\">%n",
            W,
            H));
    s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"22\" font-size=\"14\">Cascade routing curve: %s, per %s (%s)</text>%n",
            L,
            c.signal().id(),
            c.granularity().id(),
            c.metric().id()));
    // axes
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
            L,
            H - B,
            W - R,
            H - B));
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>%n",
            L,
            T,
            L,
            H - B));
    for (int i = 0; i <= 5; i++) {
      double xv = x0 + (x1 - x0) * i / 5;
      double yv = y0 + (y1 - y0) * i / 5;
      s.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f</text>%n",
              x(xv, x0, x1),
              H - B + 16,
              xv));
      s.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>%n",
              L - 6,
              y(yv, y0, y1) + 4,
              yv));
    }
    s.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">FLOPs relative to the large model"
                + " alone</text>%n",
            (L + W - R) / 2,
            H - 15));
    s.append(
        String.format(
            Locale.ROOT,
            "<text x=\"16\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\">"
                + "quality relative to the large model</text>%n",
            (T + H - B) / 2,
            (T + H - B) / 2));
    double ty = y(target, y0, y1);
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"gray\""
                + " stroke-dasharray=\"5,4\"/><text x=\"%d\" y=\"%.1f\" fill=\"gray\">target"
                + " %.3f</text>%n",
            L,
            ty,
            W - R,
            ty,
            W - R - 90,
            ty - 4,
            target));
    StringBuilder line = new StringBuilder();
    for (RoutingCurve.Point p : c.points()) {
      line.append(
          String.format(
              Locale.ROOT, "%.1f,%.1f ", x(p.costFraction(), x0, x1), y(p.qualityRatio(), y0, y1)));
    }
    s.append("<polyline fill=\"none\" stroke=\"steelblue\" points=\"")
        .append(line.toString().strip())
        .append("\"/>\n");
    for (RoutingCurve.Point p : c.points()) {
      s.append(
          String.format(
              Locale.ROOT,
              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"steelblue\"><title>threshold %.4f,"
                  + " routed %.3f</title></circle>%n",
              x(p.costFraction(), x0, x1),
              y(p.qualityRatio(), y0, y1),
              p.threshold(),
              p.fractionRouted()));
    }
    mark(s, c.smallAlone(), "small alone", "darkorange", x0, x1, y0, y1);
    mark(s, c.largeAlone(), "large alone", "firebrick", x0, x1, y0, y1);
    s.append("</svg>\n");
    return s.toString();
  }

  private static void mark(
      StringBuilder s,
      RoutingCurve.Point p,
      String label,
      String color,
      double x0,
      double x1,
      double y0,
      double y1) {
    double cx = x(p.costFraction(), x0, x1);
    double cy = y(p.qualityRatio(), y0, y1);
    s.append(
        String.format(
            Locale.ROOT,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\"/><text x=\"%.1f\""
                + " y=\"%.1f\" fill=\"%s\">%s</text>%n",
            cx - 4,
            cy - 4,
            color,
            cx + 8,
            cy + 14,
            color,
            label));
  }

  private static double x(double v, double x0, double x1) {
    return L + (v - x0) / (x1 - x0) * (W - L - R);
  }

  private static double y(double v, double y0, double y1) {
    return H - B - (v - y0) / (y1 - y0) * (H - T - B);
  }
}
