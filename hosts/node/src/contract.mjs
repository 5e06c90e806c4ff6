// The WIT package this host implements (wit/scimlet.wit): a component of another version is
// refused at load, as the Rust host does.
export const PACKAGE = 'scimlet:scim';
export const CONTRACT = '0.3.0';
