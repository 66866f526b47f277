//! What `imgflow setup` changes, as a readable diff: one section per
//! resource, one line per entry (`+` added, `~` changed, `-` removed, `=`
//! kept as it is). `--dry-run` prints it and stops. Pure: no I/O.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Add,
    Change,
    Remove,
    Keep,
}

impl Mark {
    fn symbol(self) -> char {
        match self {
            Mark::Add => '+',
            Mark::Change => '~',
            Mark::Remove => '-',
            Mark::Keep => '=',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<(Mark, String)>,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            lines: vec![],
        }
    }

    pub fn line(mut self, mark: Mark, text: impl Into<String>) -> Section {
        self.lines.push((mark, text.into()));
        self
    }

    /// Does applying it change anything?
    pub fn changes(&self) -> bool {
        self.lines.iter().any(|(mark, _)| *mark != Mark::Keep)
    }

    /// Entries keyed by Id (or Sid): `before` and `after` compared.
    pub fn diff(
        title: impl Into<String>,
        before: &[(String, String)],
        after: &[(String, String)],
    ) -> Section {
        let mut section = Section::new(title);
        for (key, text) in after {
            let mark = match before.iter().find(|(k, _)| k == key) {
                None => Mark::Add,
                Some((_, old)) if old == text => Mark::Keep,
                Some(_) => Mark::Change,
            };
            section.lines.push((mark, format!("{key}: {text}")));
        }
        for (key, text) in before {
            if !after.iter().any(|(k, _)| k == key) {
                section.lines.push((Mark::Remove, format!("{key}: {text}")));
            }
        }
        section
    }
}

/// Every section, and the notes worth reading before applying them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub sections: Vec<Section>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    pub fn changes(&self) -> bool {
        self.sections.iter().any(Section::changes)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for section in &self.sections {
            writeln!(f, "{}", section.title)?;
            if section.lines.is_empty() {
                writeln!(f, "  (nothing)")?;
            }
            for (mark, text) in &section.lines {
                writeln!(f, "  {} {text}", mark.symbol())?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if !self.changes() {
            writeln!(f, "nothing to change")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_diff_marks_added_changed_removed_and_kept_entries() {
        let before = pairs(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let after = pairs(&[("a", "1"), ("b", "20"), ("d", "4")]);
        let section = Section::diff("t", &before, &after);
        let marks: Vec<_> = section
            .lines
            .iter()
            .map(|(m, t)| (*m, t.as_str()))
            .collect();
        assert_eq!(
            marks,
            [
                (Mark::Keep, "a: 1"),
                (Mark::Change, "b: 20"),
                (Mark::Add, "d: 4"),
                (Mark::Remove, "c: 3"),
            ]
        );
        let mut plan = Plan::default();
        plan.push(section);
        let text = plan.to_string();
        assert!(
            text.starts_with("t\n  = a: 1\n  ~ b: 20\n  + d: 4\n  - c: 3\n"),
            "{text}"
        );
    }

    #[test]
    fn a_plan_without_changes_says_so() {
        let mut plan = Plan::default();
        plan.push(Section::new("bucket x").line(Mark::Keep, "exists"));
        assert!(!plan.changes());
        assert!(plan.to_string().ends_with("nothing to change\n"));
    }
}
