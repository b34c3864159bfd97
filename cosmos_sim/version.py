"""The package version, in a module of its own: modules inside the package read it without importing the
package (whose import registers the gym ids)."""

__version__ = "0.1.0"
