//! How the console's text looks, apart from any screen: the font (packed at
//! build time, unpacked for the size a screen uses), the line-drawing
//! characters the font lacks, the palette and how a glyph's coverage blends
//! two colours.
//!
//! A crate of its own, below the kernel, because the test runner needs the
//! same pixels to read the screen back: with the kernel as its dependency
//! it compiled the whole kernel for the host for a font.

#![cfg_attr(not(test), no_std)]

pub mod charset;
pub mod color;
pub mod font;
