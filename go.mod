module taobox

go 1.26
