//! Reading JMeter test elements: the element/`hashTree` pairing, properties in both the old
//! (`stringProp` for everything, `enabled` attribute) and the JMeter 5.6 formats (`intProp`,
//! `boolProp`, default values left out, no `enabled` attribute), and the human names used in
//! report paths.

use crate::import::xml::Node;

/// A test element with its children (the elements of the `hashTree` that follows it).
#[derive(Debug)]
pub(crate) struct El<'a> {
    pub node: &'a Node,
    pub children: Vec<El<'a>>,
}

impl<'a> El<'a> {
    /// The elements of a `hashTree`, each paired with the `hashTree` after it.
    pub fn list(tree: &'a Node) -> Vec<El<'a>> {
        let mut out: Vec<El<'a>> = Vec::new();
        for child in &tree.children {
            if child.name == "hashTree" {
                if let Some(last) = out.last_mut() {
                    if last.children.is_empty() {
                        last.children = El::list(child);
                    }
                }
            } else {
                out.push(El {
                    node: child,
                    children: Vec::new(),
                });
            }
        }
        out
    }

    /// The element's class: `testclass`, else the tag.
    pub fn class(&self) -> &'a str {
        self.node.attr("testclass").unwrap_or(&self.node.name)
    }

    /// The class without its Java package (`kg.apc.jmeter.threads.UltimateThreadGroup` →
    /// `UltimateThreadGroup`).
    pub fn short_class(&self) -> &'a str {
        let c = self.class();
        c.rsplit('.').next().unwrap_or(c)
    }

    pub fn guiclass(&self) -> &'a str {
        self.node.attr("guiclass").unwrap_or_default()
    }

    pub fn name(&self) -> &'a str {
        self.node.attr("testname").unwrap_or_default()
    }

    /// Disabled by `enabled="false"`; no attribute (JMeter 5.6) means enabled.
    pub fn enabled(&self) -> bool {
        self.node.attr("enabled") != Some("false")
    }

    /// `Kind "name"` for report paths.
    pub fn label(&self) -> String {
        format!(
            "{} {:?}",
            kind_label(self.short_class(), self.guiclass()),
            self.name()
        )
    }

    pub fn prop(&self, name: &str) -> Option<&'a str> {
        prop(self.node, name)
    }

    pub fn prop_or(&self, name: &str, default: &'a str) -> &'a str {
        self.prop(name).unwrap_or(default)
    }

    pub fn bool(&self, name: &str) -> bool {
        self.prop(name).is_some_and(|v| v.trim() == "true")
    }
}

/// A scalar property (`stringProp`, `intProp`, `longProp`, `boolProp`, `floatProp`,
/// `doubleProp`) of a node, by its `name`.
pub(crate) fn prop<'a>(node: &'a Node, name: &str) -> Option<&'a str> {
    node.children
        .iter()
        .find(|c| {
            matches!(
                c.name.as_str(),
                "stringProp" | "intProp" | "longProp" | "boolProp" | "floatProp" | "doubleProp"
            ) && c.attr("name") == Some(name)
        })
        .map(|c| c.text.as_str())
}

/// An `elementProp` of a node, by name (case-insensitive: JMeter writes `HTTPsampler.Arguments`).
pub(crate) fn element_prop<'a>(node: &'a Node, name: &str) -> Option<&'a Node> {
    node.children.iter().find(|c| {
        c.name == "elementProp" && c.attr("name").is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The children of a `collectionProp`, by name.
pub(crate) fn collection<'a>(node: &'a Node, name: &str) -> &'a [Node] {
    node.children
        .iter()
        .find(|c| c.name == "collectionProp" && c.attr("name") == Some(name))
        .map_or(&[], |c| c.children.as_slice())
}

/// `Arguments.arguments` of an `Arguments` element (or element property): (name, value, node).
pub(crate) fn arguments(node: &Node) -> Vec<(&str, &str, &Node)> {
    collection(node, "Arguments.arguments")
        .iter()
        .map(|a| {
            (
                prop(a, "Argument.name").unwrap_or_default(),
                prop(a, "Argument.value").unwrap_or_default(),
                a,
            )
        })
        .collect()
}

/// The words of the GUI for an element class, for report paths.
pub(crate) fn kind_label(class: &str, gui: &str) -> String {
    let label = match class {
        "TestPlan" => "Test Plan",
        "ThreadGroup" => "Thread Group",
        "SetupThreadGroup" => "setUp Thread Group",
        "PostThreadGroup" => "tearDown Thread Group",
        "HTTPSamplerProxy" | "HTTPSampler" | "HTTPSampler2" => "HTTP Request",
        "ConfigTestElement" if gui == "HttpDefaultsGui" => "HTTP Request Defaults",
        "HeaderManager" => "HTTP Header Manager",
        "CookieManager" => "HTTP Cookie Manager",
        "CacheManager" => "HTTP Cache Manager",
        "Arguments" => "User Defined Variables",
        "CSVDataSet" => "CSV Data Set Config",
        "ConstantTimer" => "Constant Timer",
        "UniformRandomTimer" => "Uniform Random Timer",
        "GaussianRandomTimer" => "Gaussian Random Timer",
        "ConstantThroughputTimer" => "Constant Throughput Timer",
        "RegexExtractor" => "Regular Expression Extractor",
        "JSONPostProcessor" => "JSON Extractor",
        "BoundaryExtractor" => "Boundary Extractor",
        "ResponseAssertion" => "Response Assertion",
        "DurationAssertion" => "Duration Assertion",
        "JSONPathAssertion" => "JSON Assertion",
        "TransactionController" => "Transaction Controller",
        "LoopController" => "Loop Controller",
        "GenericController" => "Simple Controller",
        "IfController" => "If Controller",
        "TestAction" => "Flow Control Action",
        _ => class,
    };
    label.to_string()
}

/// Listeners and other elements that only observe the test: ignored without a report line.
pub(crate) fn is_listener(el: &El<'_>) -> bool {
    let class = el.class();
    matches!(
        class,
        "ResultCollector"
            | "Summariser"
            | "BackendListener"
            | "ResultSaver"
            | "MailerResultCollector"
    ) || class.starts_with("kg.apc.jmeter.vizualizers")
        || class.starts_with("kg.apc.jmeter.listener")
        || class.starts_with("kg.apc.jmeter.perfmon")
        || class.ends_with("ResultCollector")
        || class.ends_with("Listener") && !class.contains("Thread")
}
