//! Line charts as inline SVG, for the HTML report: axes with round ticks, one polyline per
//! series (or steps, for a level), a legend. Plain text, no fonts to embed, no dependency.

use std::fmt::Write;

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// An SVG colour.
    pub colour: &'static str,
    /// (x, y) points, x increasing.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a reference, such as the fault-free run).
    pub dashed: bool,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Its title.
    pub title: String,
    /// The x axis's label.
    pub x_label: String,
    /// The y axis's label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Draw steps (the value holds until the next point) instead of straight segments.
    pub steps: bool,
    /// Tick labels on the y axis instead of numbers (for a level: Normal, Reduced, ...).
    pub y_names: Option<Vec<&'static str>>,
}

/// The colours series take in turn.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

const W: f64 = 900.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

/// A round step for about `n` ticks over `span`: 1, 2 or 5 times a power of ten.
fn tick_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn number(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        return format!("{:.0}k", v / 1000.0);
    }
    // Ticks are sums of a step, so 2.0000000004 is 2.
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> String {
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
        for &(x, y) in all {
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        if let Some(names) = &self.y_names {
            y_max = (names.len() - 1) as f64;
        }
        let x_max = if x_max > 0.0 { x_max } else { 1.0 };
        let y_step = if self.y_names.is_some() {
            1.0
        } else {
            tick_step(y_max, 5.0)
        };
        let y_top = if self.y_names.is_some() {
            y_max
        } else {
            (y_max / y_step).ceil().max(1.0) * y_step
        };
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let px = |x: f64| LEFT + x / x_max * pw;
        let py = |y: f64| TOP + ph - y / y_top * ph;
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"##
        );
        let _ = write!(s, r##"<rect width="{W}" height="{H}" fill="#fff"/>"##);
        let _ = write!(
            s,
            r##"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"##,
            escape(&self.title)
        );
        // Grid and y ticks.
        let mut y = 0.0;
        while y <= y_top + 1e-9 {
            let label = match &self.y_names {
                Some(names) => names.get(y as usize).copied().unwrap_or("").to_owned(),
                None => number(y),
            };
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{y1:.1}" y2="{y1:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                py(y) + 4.0,
                escape(&label),
                y1 = py(y)
            );
            y += y_step;
        }
        // X ticks.
        let x_step = tick_step(x_max, 8.0);
        let mut x = 0.0;
        while x <= x_max + 1e-9 {
            let _ = write!(
                s,
                r##"<line x1="{x1:.1}" x2="{x1:.1}" y1="{}" y2="{}" stroke="#999"/><text x="{x1:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 5.0,
                TOP + ph + 18.0,
                number(x),
                x1 = px(x)
            );
            x += x_step;
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
        );
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"##,
            LEFT + pw / 2.0,
            H - 6.0,
            escape(&self.x_label)
        );
        let _ = write!(
            s,
            r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let mut d = String::new();
            let mut last: Option<(f64, f64)> = None;
            for &(x, y) in &series.points {
                match last {
                    None => {
                        let _ = write!(d, "M{:.1} {:.1}", px(x), py(y));
                    }
                    Some((_, ly)) if self.steps => {
                        let _ =
                            write!(d, " L{:.1} {:.1} L{:.1} {:.1}", px(x), py(ly), px(x), py(y));
                    }
                    Some(_) => {
                        let _ = write!(d, " L{:.1} {:.1}", px(x), py(y));
                    }
                }
                last = Some((x, y));
            }
            let dash = if series.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r##"<path d="{d}" fill="none" stroke="{}" stroke-width="2"{dash}/>"##,
                series.colour
            );
            let ly = TOP + 12.0 + i as f64 * 18.0;
            let lx = LEFT + pw + 14.0;
            let _ = write!(
                s,
                r##"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/><text x="{}" y="{}">{}</text>"##,
                lx + 22.0,
                series.colour,
                lx + 28.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0, 5.0), 20.0);
        assert_eq!(tick_step(7.0, 8.0), 1.0);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
        assert_eq!(number(20000.0), "20k");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.2 * 10.0 + 1e-12), "2");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn a_chart_is_one_svg_element_with_a_path_per_series_and_escaped_text() {
        let chart = Chart {
            title: "a < b".into(),
            x_label: "s".into(),
            y_label: "n".into(),
            series: vec![
                Series {
                    name: "one".into(),
                    colour: PALETTE[0],
                    points: vec![(0.0, 0.0), (1.0, 5.0)],
                    dashed: false,
                },
                Series {
                    name: "two".into(),
                    colour: PALETTE[1],
                    points: vec![],
                    dashed: true,
                },
            ],
            steps: true,
            y_names: None,
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(!svg.contains("NaN"));
    }
}
