package dev.compactor.core.frontier;

import static dev.compactor.core.frontier.ParetoFrontierTest.PPL;
import static dev.compactor.core.frontier.ParetoFrontierTest.SIZE;
import static dev.compactor.core.frontier.ParetoFrontierTest.p;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

class SvgScatterPlotTest {

  static Document parse(String svg) throws Exception {
    DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
    f.setNamespaceAware(true);
    return f.newDocumentBuilder()
        .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
  }

  static List<Element> withClass(Document d, String tag, String cls) {
    List<Element> out = new ArrayList<>();
    NodeList n = d.getElementsByTagName(tag);
    for (int i = 0; i < n.getLength(); i++) {
      Element e = (Element) n.item(i);
      if (List.of(e.getAttribute("class").split(" ")).contains(cls)) {
        out.add(e);
      }
    }
    return out;
  }

  static List<String> texts(Document d, String cls) {
    return withClass(d, "text", cls).stream().map(Element::getTextContent).toList();
  }

  @Test
  void plotHasAxesTicksPointsFrontierLegendAndKey() throws Exception {
    List<FrontierPoint> pts =
        List.of(
            p("a<&>", "size", 1 << 20, "ppl", 5),
            p("b", "size", 2 << 20, "ppl", 3),
            p("c", "size", 3 << 20, "ppl", 4),
            p("d", "size", 4 << 20, "ppl", 1),
            p("unmeasured", "size", 1 << 19));
    String svg =
        new SvgScatterPlot(
                "Frontier",
                "4 recipes",
                SIZE,
                SvgScatterPlot.Format.BYTES,
                PPL,
                SvgScatterPlot.Format.NUMBER)
            .render(pts, "b");
    Document d = parse(svg);
    Element root = d.getDocumentElement();
    assertEquals("svg", root.getLocalName());
    assertEquals("http://www.w3.org/2000/svg", root.getNamespaceURI());
    assertEquals(4, withClass(d, "circle", "point").size());
    assertEquals(3, withClass(d, "circle", "frontier").size());
    assertEquals(1, withClass(d, "circle", "dominated").size());
    assertEquals(1, withClass(d, "circle", "chosen").size());
    Element line = withClass(d, "polyline", "frontier").get(0);
    String[] vertices = line.getAttribute("points").split(" ");
    assertEquals(3, vertices.length);
    // left to right: x grows along the line; y (smaller ppl = higher up) goes up the screen
    double prevX = -1;
    for (String v : vertices) {
      double x = Double.parseDouble(v.split(",")[0]);
      assertTrue(x > prevX, line.getAttribute("points"));
      prevX = x;
    }
    assertEquals(List.of("size (bytes) (lower is better)"), texts(d, "x-label"));
    assertEquals(List.of("perplexity (lower is better)"), texts(d, "y-label"));
    List<String> ticks = texts(d, "tick");
    assertTrue(ticks.stream().filter(t -> t.endsWith(" MiB")).count() >= 3, ticks.toString());
    assertTrue(ticks.contains("1.0 MiB"), ticks.toString()); // nice steps in MiB, not in bytes
    assertTrue(ticks.contains("1.5 MiB"), ticks.toString());
    assertEquals(List.of("1", "2", "3", "4"), texts(d, "point-label"), "numbered in input order");
    List<String> key = texts(d, "key-entry");
    assertEquals("1  a<&>", key.get(0));
    assertTrue(key.get(4).contains("not plotted: no ppl"), key.get(4));
    String longLabel = "x".repeat(200);
    List<String> cut =
        texts(
            parse(
                new SvgScatterPlot(
                        "t",
                        null,
                        SIZE,
                        SvgScatterPlot.Format.NUMBER,
                        PPL,
                        SvgScatterPlot.Format.NUMBER)
                    .render(List.of(p(longLabel, "size", 1, "ppl", 1)), null)),
            "key-entry");
    assertTrue(cut.get(0).endsWith("…") && cut.get(0).length() < 60, cut.get(0));
    assertTrue(texts(d, "legend-entry").contains("chosen: b"));
    assertEquals(List.of("Frontier"), texts(d, "title"));
  }

  @Test
  void onePointStillGetsUsableAxes() throws Exception {
    Document d =
        parse(
            new SvgScatterPlot(
                    "x",
                    null,
                    SIZE,
                    SvgScatterPlot.Format.NUMBER,
                    PPL,
                    SvgScatterPlot.Format.NUMBER)
                .render(List.of(p("only", "size", 7, "ppl", 2)), null));
    assertEquals(1, withClass(d, "circle", "frontier").size());
    assertTrue(texts(d, "tick").size() >= 4);
    assertTrue(withClass(d, "circle", "chosen").isEmpty());
  }

  @Test
  void ticksAreNiceAndCoverTheData() {
    SvgScatterPlot.Ticks t = SvgScatterPlot.Ticks.of(0.013, 0.087, 7);
    assertEquals(0.02, t.step(), 1e-12); // (0.087 - 0.013) * 1.1 / 7 = 0.0116 -> 0.02
    assertTrue(t.values().size() >= 4 && t.values().size() <= 8, t.values().toString());
    assertTrue(t.min() <= 0.013 && t.max() >= 0.087);
    SvgScatterPlot.Ticks big = SvgScatterPlot.Ticks.of(180_000, 1_700_000, 7);
    assertEquals(250_000, big.step(), 1e-6);
    assertEquals(0, big.min(), 1e-6);
    assertEquals(2, SvgScatterPlot.decimals(0.25));
    assertEquals(0, SvgScatterPlot.decimals(5));
  }
}
