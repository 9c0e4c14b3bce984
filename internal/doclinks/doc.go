// Package doclinks holds a test that every relative link in the README and
// docs/ resolves: to a file or folder of the repository and, with a
// #fragment, to a heading of the Markdown file it names. It has no code of
// its own and nothing imports it.
package doclinks
