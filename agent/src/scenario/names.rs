//! Variable names and the indices VUs keep their values at: a leaf every part of the compiled
//! scenario uses (templates, feeders, extractions), so none of them needs the scenario's root.

/// Variable names and their indices in a `VuState`.
#[derive(Debug, Default)]
pub(crate) struct Names(pub(super) Vec<String>);

impl Names {
    pub(super) fn add(&mut self, name: &str) -> usize {
        match self.get(name) {
            Some(i) => i,
            None => {
                self.0.push(name.to_string());
                self.0.len() - 1
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|n| n == name)
    }
}
