package users

// Edition is the wording of Appendix 1 the registry numbers roles by (MaxRole rows): the 2026
// wording of Order No. 34 of 23.02.2026. The registry refuses to write to a store whose users'
// roles are of another wording until `siobroker users migrate-roles` has renumbered them.
const Edition = "2026"
